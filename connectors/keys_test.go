package connectors

import "testing"

// Keys name a setting by its full config key when the block is known,
// else as the target's or the source's, a part's path kept either way.
func TestKeys(t *testing.T) {
	pd := SourceKeys("connections.pd.source").Under("accounts.42.oauth")
	for _, c := range []struct{ got, want string }{
		{TargetKeys("targets.qbo-us").Key("realm_id"), "targets.qbo-us.realm_id"},
		{TargetKeys("").Key("realm_id"), "the target's realm_id"},
		{SourceKeys("").Under("accounts.42").Key("api_token"), "the source's accounts.42.api_token"},
		{Keys{}.Key("client_id"), "client_id"},
		{pd.Key("token_file"), "connections.pd.source.accounts.42.oauth.token_file"},
		{pd.List("client_id", "client_secret"), "connections.pd.source.accounts.42.oauth.client_id and connections.pd.source.accounts.42.oauth.client_secret"},
		{TargetKeys("").List("scope", "algorithm", "token_url"), "the target's scope, algorithm and token_url"},
		{TargetKeys("targets.ns").List("client_id"), "targets.ns.client_id"},
		{SourceKeys("").Under("accounts.42").List("client_id", "client_secret"), "the source's accounts.42.client_id and accounts.42.client_secret"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// With the variables of the config (Env.KeyVar), a key is named with the
// variable that can set it, in a part and in a list too; a key no variable
// sets (KeyVar says "") is named alone.
func TestKeysNameTheirVariables(t *testing.T) {
	vars := map[string]string{
		"targets.books.client_id":                     "DEALSYNC_TARGETS_BOOKS_CLIENT_ID",
		"targets.books.client_secret":                 "DEALSYNC_TARGETS_BOOKS_CLIENT_SECRET",
		"connections.pd.source.accounts.42.api_token": "DEALSYNC_CONNECTIONS_PD_SOURCE_ACCOUNTS_42_API_TOKEN",
	}
	env := Env{KeyVar: func(key string) string { return vars[key] }}
	env.ConfigKey = "targets.books"
	books := env.TargetKeys()
	env.ConfigKey = "connections.pd.source"
	pd := env.SourceKeys().Under("accounts.42")
	for _, c := range []struct{ got, want string }{
		{books.Key("client_id"), "targets.books.client_id (or DEALSYNC_TARGETS_BOOKS_CLIENT_ID)"},
		{books.List("client_id", "client_secret"), "targets.books.client_id (or DEALSYNC_TARGETS_BOOKS_CLIENT_ID) and targets.books.client_secret (or DEALSYNC_TARGETS_BOOKS_CLIENT_SECRET)"},
		{books.Key("token_file"), "targets.books.token_file"},
		{pd.Key("api_token"), "connections.pd.source.accounts.42.api_token (or DEALSYNC_CONNECTIONS_PD_SOURCE_ACCOUNTS_42_API_TOKEN)"},
		{pd.Key("oauth.client_id"), "connections.pd.source.accounts.42.oauth.client_id"},
		{Env{KeyVar: env.KeyVar}.TargetKeys().Key("client_id"), "the target's client_id"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if (Keys{KeyVar: env.KeyVar}).IsZero() != true || books.IsZero() {
		t.Errorf("IsZero: a Keys with only KeyVar is zero, one with a block is not")
	}
}
