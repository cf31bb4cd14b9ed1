#!/usr/bin/env bash
# sqlwork.sh -- prints an SQL script for sqlite3 (run as: sqlwork.sh SCALE | sqlite3 :memory:):
# inserts, an index, updates, joins and aggregates. The output is the same under every allocator.
scale=${1:-1}
rows=$(awk -v s="$scale" 'BEGIN { n = int(400000 * s); print (n < 1000 ? 1000 : n) }')
cat <<SQL
PRAGMA cache_size = -65536;
CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT, city INTEGER);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, amount INTEGER, note TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $rows / 10)
  INSERT INTO customer SELECT x, 'customer-' || (x * 7919 % 100003), x % 97 FROM c;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $rows)
  INSERT INTO orders SELECT x, 1 + (x * 2654435761 % ($rows / 10)), x * 37 % 1000,
    printf('%.*c', 8 + x % 40, 'n') FROM c;
CREATE INDEX orders_customer ON orders(customer);
CREATE INDEX orders_amount ON orders(amount, note);
UPDATE orders SET note = note || '-x' WHERE amount % 7 = 0;
SELECT count(*), sum(o.amount), sum(length(o.note)) FROM orders o JOIN customer c ON c.id = o.customer
  WHERE c.city < 50;
SELECT c.city, count(*), sum(o.amount) FROM customer c JOIN orders o ON o.customer = c.id
  GROUP BY c.city ORDER BY 3 DESC LIMIT 5;
SELECT group_concat(name, ',') FROM (SELECT name FROM customer ORDER BY name LIMIT 20);
DELETE FROM orders WHERE amount < 300;
SELECT count(*), total(amount) FROM orders;
SQL
