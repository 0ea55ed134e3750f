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
