package hubspot

import "strings"

// envVar is the variable of a config key as the config spells it when no
// other key shares it (config.Config.KeyVar).
func envVar(key string) string {
	return "DEALSYNC_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}
