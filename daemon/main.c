/* signgated — the gate daemon. Until the gate lands (issue "The gate") it only reports its
 * version, so packaging and the unit files can already be built and checked. */
#include <stdio.h>
#include <string.h>

#include "sg_version.h"

int main(int argc, char **argv) {
        if (argc == 2 && strcmp(argv[1], "--version") == 0) {
                printf("signgated %s\n", SG_VERSION);
                return 0;
        }
        fprintf(stderr, "signgated: the gate daemon is not built yet in this version; only --version works\n");
        return 2;
}
