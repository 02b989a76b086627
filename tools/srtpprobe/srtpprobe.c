/* srtpprobe: places and answers test calls that prove audio flows. */
#include <stdio.h>

int main(void)
{
	fputs("srtpprobe: not built yet\n", stderr);
	return 3;
}
