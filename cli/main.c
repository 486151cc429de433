#include <stdio.h>
int main(void) { puts("crosstime"); return 0; }
