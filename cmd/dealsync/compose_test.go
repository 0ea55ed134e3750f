package main

import (
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/connectors/httptarget"
	"github.com/dealsync/dealsync/workflows"
)

// composeService is the part of a docker-compose service this test reads.
type composeService struct {
	Build       string            `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	DependsOn   dependsOn         `yaml:"depends_on"`
	Restart     string            `yaml:"restart"`
	Healthcheck struct {
		Test    []string `yaml:"test"`
		Timeout string   `yaml:"timeout"`
	} `yaml:"healthcheck"`
}

// dependsOn is a service's depends_on in either of compose's forms: a list
// of services, or services with a condition.
type dependsOn map[string]string // service → condition ("" in the list form)

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, s := range list {
			(*d)[s] = ""
		}
		return nil
	}
	var long map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&long); err != nil {
		return err
	}
	for s, c := range long {
		(*d)[s] = c.Condition
	}
	return nil
}

// No Docker engine runs where the tests run, so docker-compose.yml cannot
// be brought up here. This checks that it and the config it mounts agree:
// the dealsync services run real subcommands, the config file they name is
// mounted with the mapping files beside it, every DEALSYNC_* variable is a
// config key that changes something, and the addresses point at services
// of the file. The config then loads and builds its connections exactly as
// the containers would.
func TestComposeFileAgreesWithTheConfig(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]composeService `yaml:"services"`
		Volumes  map[string]any            `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	services := compose.Services
	var dealsync []string
	for name, svc := range services {
		if svc.Build != "" {
			dealsync = append(dealsync, name)
		}
		for dep := range svc.DependsOn {
			if _, ok := services[dep]; !ok {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
			}
		}
	}
	slices.Sort(dealsync)
	if want := []string{"intake", "sandbox-erp", "worker"}; !slices.Equal(dealsync, want) {
		t.Fatalf("services built from this repository: %v, want %v", dealsync, want)
	}
	// Only the intake is published to the network: the Temporal frontend
	// takes unauthenticated starts (any connection, any mapping), the Web
	// UI shows and changes runs, the sandbox takes invoices.
	for name, svc := range services {
		for _, p := range svc.Ports {
			if name != "intake" && !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %q to every interface; want 127.0.0.1:…", name, p)
			}
		}
	}
	// `dealsync worker` stops on a namespace without the search attributes
	// (and when Temporal is not up yet): it must start after their
	// registration has finished, and again when it stops.
	if w := services["worker"]; w.DependsOn["search-attributes"] != "service_completed_successfully" || w.Restart != "on-failure" {
		t.Errorf("worker: depends_on %v, restart %q; want search-attributes completed and restart on-failure", w.DependsOn, w.Restart)
	}

	// The search attributes the registration creates, and checks for, are
	// the ones the workflows use, with their types.
	script := strings.Join(services["search-attributes"].Command, "\n")
	created := map[string]string{}
	checked := map[string]bool{}
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		list, ok := strings.CutPrefix(line, "for sa in ")
		if !ok {
			continue
		}
		list, _, _ = strings.Cut(list, ";")
		for _, f := range strings.Fields(list) {
			if name, typ, typed := strings.Cut(f, ":"); typed {
				created[name] = typ
			} else {
				checked[f] = true
			}
		}
	}
	want := workflows.SearchAttributeTypes()
	if len(created) != len(want) || len(checked) != len(want) {
		t.Errorf("search-attributes creates %v and checks %v; the workflows use %d", created, checked, len(want))
	}
	for name, typ := range want {
		if got := created[name]; !strings.EqualFold(got, strings.TrimPrefix(typ.String(), "INDEXED_VALUE_TYPE_")) || !checked[name] {
			t.Errorf("search attribute %s: created as %q (want %s), checked %v", name, got, typ, checked[name])
		}
	}

	const mountDir = "/etc/dealsync"
	hostConfig := ""
	for _, name := range dealsync {
		svc := services[name]
		sub, _, err := newRoot().Find(svc.Command[:1])
		if err != nil || sub.Name() != svc.Command[0] {
			t.Errorf("%s runs `dealsync %s`, which is not a command", name, svc.Command[0])
		} else if err := sub.ParseFlags(svc.Command[1:]); err != nil {
			t.Errorf("%s: `dealsync %s`: %v", name, strings.Join(svc.Command, " "), err)
		}
		cfgPath := flagValue(svc.Command, "--config")
		host := hostPathOf(svc.Volumes, cfgPath)
		if host == "" {
			t.Errorf("%s: --config %q is not in a mounted folder (volumes %v)", name, cfgPath, svc.Volumes)
			continue
		}
		if !strings.HasPrefix(cfgPath, mountDir+"/") || !slices.Contains(svc.Volumes, "./examples:"+mountDir+":ro") {
			t.Errorf("%s must mount ./examples at %s (the config refers to mapping files beside it): %v", name, mountDir, svc.Volumes)
		}
		hostConfig = host
	}
	// Every dealsync service loads the whole config, whose secrets come
	// from the environment.
	for _, name := range dealsync {
		if !reflect.DeepEqual(services[name].Environment, services["worker"].Environment) {
			t.Errorf("%s does not have the workers' environment: every dealsync service loads the config, secrets included", name)
		}
	}

	env := services["worker"].Environment
	const secretVar = "DEALSYNC_DEMO_SECRET" // referenced by env:, not a config key
	testSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("compose-test-secret"))
	required := regexp.MustCompile(`^\$\{` + secretVar + `:\?[^}]*\}$`)
	if !required.MatchString(env[secretVar]) {
		t.Errorf("%s must be required from .env (${%s:?...}), got %q", secretVar, secretVar, env[secretVar])
	}
	setAll := func(except string) {
		for k, v := range env {
			if k == except {
				os.Unsetenv(k)
				continue
			}
			if k == secretVar {
				v = testSecret
			}
			t.Setenv(k, v)
		}
	}
	path := filepath.Join("../..", hostConfig)
	setAll("")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the config the containers load does not load: %v", err)
	}
	// Control: the same environment loads the same config, so a difference
	// below is the variable's doing.
	if again, err := config.Load(path); err != nil || !sameConfig(again, cfg) {
		t.Fatalf("loading the same config twice gives different results (%v): cannot tell what a variable changes", err)
	}
	for k := range env {
		if k == secretVar || !strings.HasPrefix(k, "DEALSYNC_") {
			continue
		}
		setAll(k)
		without, err := config.Load(path)
		if err == nil && sameConfig(without, cfg) {
			t.Errorf("%s changes nothing in the config: not a config key, or the file already says the same", k)
		}
	}
	setAll("")

	// Addresses point at services of the file.
	host, port, _ := net.SplitHostPort(cfg.Temporal.Address)
	if _, ok := services[host]; !ok || port != "7233" {
		t.Errorf("temporal.address %s is not the temporal service's frontend", cfg.Temporal.Address)
	}
	target, ok := cfg.Targets["sandbox"].Spec.(*httptarget.Config)
	if !ok {
		t.Fatalf("targets.sandbox is not an http target: %T", cfg.Targets["sandbox"].Spec)
	}
	if want := "http://sandbox-erp:" + listenPort(t, flagValue(services["sandbox-erp"].Command, "--listen")); target.BaseURL != want {
		t.Errorf("targets.sandbox.base_url = %s, want the sandbox-erp service %s", target.BaseURL, want)
	}
	// The sandbox keeps its data on a named volume of the file, like the
	// runs in Postgres, so that a restart of its container forgets nothing.
	sb := services["sandbox-erp"]
	journal := flagValue(sb.Command, "--journal")
	if vol := volumeOf(sb.Volumes, journal); journal == "" || vol == "" {
		t.Errorf("sandbox-erp --journal %q is not on a named volume (volumes %v)", journal, sb.Volumes)
	} else if _, ok := compose.Volumes[vol]; !ok {
		t.Errorf("sandbox-erp mounts volume %s, which the file does not declare", vol)
	}
	_, intakePort, _ := net.SplitHostPort(cfg.Intake.Listen)
	for _, p := range services["intake"].Ports {
		if !strings.HasSuffix(p, ":"+intakePort) {
			t.Errorf("intake publishes %s, but listens on %s", p, cfg.Intake.Listen)
		}
	}
	// The intake's and the workers' healthchecks run `dealsync probe` (the
	// image has no shell nor curl) against their own /readyz, on the
	// address the config has them listen on, and wait for it longer than
	// /readyz may take (intake.start_timeout; a worker's 5 s).
	for name, listen := range map[string]string{"intake": cfg.Intake.Listen, "worker": cfg.Metrics.Listen} {
		hc := services[name].Healthcheck
		if len(hc.Test) < 4 || hc.Test[0] != "CMD" || hc.Test[1] != "/dealsync" {
			t.Errorf("%s: healthcheck %q, want [CMD /dealsync probe … URL]", name, hc.Test)
			continue
		}
		probe, _, err := newRoot().Find(hc.Test[2:3])
		if err != nil || probe.Name() != "probe" {
			t.Errorf("%s: healthcheck runs `dealsync %s`, not probe", name, hc.Test[2])
			continue
		}
		if err := probe.ParseFlags(hc.Test[3:]); err != nil {
			t.Errorf("%s: healthcheck `dealsync %s`: %v", name, strings.Join(hc.Test[2:], " "), err)
			continue
		}
		_, port, _ := net.SplitHostPort(listen)
		if args := probe.Flags().Args(); len(args) != 1 || args[0] != "http://127.0.0.1:"+port+"/readyz" {
			t.Errorf("%s: healthcheck probes %v, want http://127.0.0.1:%s/readyz (it listens on %s)", name, args, port, listen)
		}
		probeTimeout, _ := probe.Flags().GetDuration("timeout")
		hcTimeout, err := time.ParseDuration(hc.Timeout)
		if bound := max(cfg.Intake.StartTimeout, 5*time.Second); err != nil || probeTimeout <= bound || hcTimeout <= probeTimeout {
			t.Errorf("%s: healthcheck timeout %q, probe --timeout %v; want the probe's above %v (/readyz's bound), the healthcheck's above the probe's", name, hc.Timeout, probeTimeout, bound)
		}
	}
	if dockerfile, err := os.ReadFile("../../Dockerfile"); err != nil || !strings.Contains(string(dockerfile), `ENTRYPOINT ["/dealsync"]`) {
		t.Errorf("the image's binary is not /dealsync, which the healthchecks run (%v)", err)
	}

	src, ok := cfg.Connections["demo"].Source.Spec.(*generic.Config)
	if !ok {
		t.Fatalf("connections.demo.source is not generic: %T", cfg.Connections["demo"].Source.Spec)
	}
	if got, err := src.Secret.Reveal(); err != nil || got != testSecret {
		t.Errorf("the demo connection's secret is not the one of .env (%v)", err)
	}
	set, err := app.BuildConnections(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("building the connections as the containers do: %v", err)
	}
	if names := set.Names(); !slices.Contains(names, "demo") {
		t.Errorf("connections %v, want demo", names)
	}
}

// sameConfig compares two loaded configs by their settings (the compiled
// mappings hold functions, which never compare equal; their files do).
func sameConfig(a, b *config.Config) bool {
	ac, bc := *a, *b
	ac.Mappings.Loaded, bc.Mappings.Loaded = nil, nil
	return reflect.DeepEqual(ac, bc)
}

// flagValue is the value after flag in args ("" when absent).
func flagValue(args []string, flag string) string {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return ""
	}
	return args[i+1]
}

// hostPathOf maps a container path to the host path of the volume that
// holds it ("" when none does).
func hostPathOf(volumes []string, containerPath string) string {
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
			continue
		}
		if rel, err := filepath.Rel(parts[1], containerPath); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join(parts[0], rel)
		}
	}
	return ""
}

// volumeOf is the named volume (not a host folder) that holds a container
// path ("" when none does).
func volumeOf(volumes []string, containerPath string) string {
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/") {
			continue
		}
		if rel, err := filepath.Rel(parts[1], containerPath); err == nil && !strings.HasPrefix(rel, "..") {
			return parts[0]
		}
	}
	return ""
}

func listenPort(t *testing.T, listen string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("sandbox-erp --listen %q: %v", listen, err)
	}
	return port
}

// The image builds with the Go go.mod asks for: the golang image sets
// GOTOOLCHAIN=local, so an older patch release (a cached golang:1.26)
// refuses the module.
func TestDockerfileBuildsWithGoModsGo(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	docker, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for _, line := range strings.Split(string(mod), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			want = "FROM golang:" + strings.TrimSpace(v) + " AS build"
		}
	}
	if want == "" || !strings.Contains(string(docker), want+"\n") {
		t.Errorf("Dockerfile does not build with %q", want)
	}
}

// The .env file docker-compose.yml reads its secrets from (and key files)
// stay out of git and out of the image's build context.
func TestSecretsFileIsIgnored(t *testing.T) {
	for _, f := range []string{"../../.gitignore", "../../.dockerignore"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(strings.Split(string(raw), "\n"), ".env") {
			t.Errorf("%s does not list .env", f)
		}
	}
}
