/* libFuzzer target: the INI config loader over arbitrary bytes. Neither DNS
 * nor the file system is touched (CONFIG_NO_RESOLVE | CONFIG_NO_FILES). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "srtpbridge/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_problems probs = { 0 };
	struct config *cfg = NULL;
	char line[1400];

	config_load_buffer("/fuzz/srtpbridge.ini", (const char *)data, size,
			   CONFIG_NO_RESOLVE | CONFIG_NO_FILES, &cfg, &probs);
	for (size_t i = 0; i < probs.n; i++)
		config_problem_format(&probs.v[i], line, sizeof(line));
	if (cfg) {
		/* Exercise what a loaded snapshot offers its users. */
		for (size_t i = 0; i < cfg->ntrunks; i++)
			config_route_lookup(cfg, &cfg->trunks[i], "%2B4480110", 10, NULL);
		config_restart_keys_changed(cfg, cfg, NULL, NULL);
	}
	config_problems_free(&probs);
	config_unref(cfg);
	return 0;
}
