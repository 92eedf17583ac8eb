/* xattr FILE NAME [VALUE]: setxattr(2) FILE's NAME to VALUE, or removexattr(2) it without one.
 * For the arm64 smoke test (vm/arm64-smoke.sh), whose busybox has no setfattr. */
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

int main(int argc, char **argv)
{
	int r;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: xattr FILE NAME [VALUE]\n");
		return 2;
	}
	r = argc == 4 ? setxattr(argv[1], argv[2], argv[3], strlen(argv[3]), 0)
		      : removexattr(argv[1], argv[2]);
	if (r) {
		perror("xattr");
		return 1;
	}
	return 0;
}
