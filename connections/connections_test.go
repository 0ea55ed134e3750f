package connections_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	_ "github.com/dealsync/dealsync/connectors/all"
	"github.com/dealsync/dealsync/model"
)

func TestMappingReloadSwapsConnections(t *testing.T) {
	dir := t.TempDir()
	mp := filepath.Join(dir, "m.yaml")
	write := func(trigger string) {
		if err := os.WriteFile(mp, []byte("name: m\ntrigger: "+trigger+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`is_won(deal.stage)`)
	cfgPath := filepath.Join(dir, "dealsync.yaml")
	os.WriteFile(cfgPath, []byte("mappings: {files: [m.yaml], reload_interval: 0s}\nconnections:\n  demo:\n    mapping: m\n    trigger: {won_stages: [signed]}\n"), 0o644)
	cfg, err := config.Load(cfgPath, config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	set, err := connections.Build(cfg, connectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ev := model.DealEvent{Deal: model.Deal{ID: "D", Stage: "Signed", PreviousStage: "signed"}}
	before, _ := set.Get("demo")
	if ok, why, err := before.Trigger.Evaluate(ev); !ok || err != nil {
		t.Fatalf("v1 trigger (won stages of the connection, any previous stage): %s", why)
	}
	r1, _ := set.Resolve("demo")

	write(`is_won(deal.stage) && !is_won(deal.previous_stage)`)
	if err := set.ReloadMappings(); err != nil {
		t.Fatal(err)
	}
	after, _ := set.Get("demo")
	if ok, _, err := after.Trigger.Evaluate(ev); ok || err != nil {
		t.Fatal("v2 trigger not in use after reload")
	}
	if ok, _, err := before.Trigger.Evaluate(ev); !ok || err != nil {
		t.Fatal("a Connection handed out before the reload changed")
	}
	r2, _ := set.Resolve("demo")
	if r1.Mapper.Hash() == r2.Mapper.Hash() || r2.Mapper.Hash() != after.Mapper.Hash() {
		t.Fatalf("Resolve: hashes %s → %s, connection has %s", r1.Mapper.Hash(), r2.Mapper.Hash(), after.Mapper.Hash())
	}

	write(`deal.stage +`) // a bad edit keeps v2
	if err := set.ReloadMappings(); err == nil {
		t.Fatal("bad edit accepted")
	}
	if c, _ := set.Get("demo"); c.Mapper.Hash() != after.Mapper.Hash() {
		t.Fatal("bad edit replaced the mapping")
	}
}
