/* placeholder until the media helper fills it in */
typedef int srtpprobe_tone_placeholder;
