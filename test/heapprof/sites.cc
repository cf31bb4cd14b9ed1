// sites.cc -- a C++ program whose allocations come from known, named sites, for the tests that
// read its heap profile with google-pprof (prof_tools.py pprof): it dumps to argv[1].
#include <amalloc.h>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace widgets {
struct Widget {
  char payload[200];
};

class Cache {
 public:
  __attribute__((noinline)) void fill(int n) {
    for (int i = 0; i < n; i++) items_.push_back(std::make_unique<Widget>());
  }
  __attribute__((noinline)) void index(int n) {
    for (int i = 0; i < n; i++) names_[i] = std::string(100, 'x') + std::to_string(i);
  }

 private:
  std::vector<std::unique_ptr<Widget>> items_;
  std::map<int, std::string> names_;
};
}  // namespace widgets

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: sites PROFILE\n");
    return 2;
  }
  widgets::Cache cache;
  cache.fill(400000);   // ~80 MB of Widgets
  cache.index(100000);  // ~15 MB of map nodes and strings
  int err = am_prof_dump(argv[1]);
  if (err != 0) {
    std::fprintf(stderr, "am_prof_dump: %d\n", err);
    return 1;
  }
  return 0;
}
