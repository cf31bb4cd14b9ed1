/* free_list_bit_flip_medium: free_list_bit_flip with blocks of 20,000 bytes (a medium class). */
#define SIZE 20000
#include "free_list_bit_flip.c"
