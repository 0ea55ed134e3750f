package main

import (
	"context"
	"strings"
	"testing"
)

// Usage errors exit 2, as the README and the help texts say, with cobra's
// message and a pointer to the command's --help; they stop the command
// before it loads a config or connects to anything.
func TestUsageErrorsExit2(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		args    []string
		message string // cobra's
		help    string // the command whose --help the error points to
	}{
		{"missing required flag", []string{"deals", "sync", "--since", "2026-11-01"}, `required flag(s) "connection" not set`, "dealsync deals sync"},
		{"unknown flag", []string{"mapping", "test", "--bogus"}, "unknown flag: --bogus", "dealsync mapping test"},
		{"wrong number of arguments", []string{"webhook", "send", "a.json", "b.json"}, "accepts 1 arg(s), received 2", "dealsync webhook send"},
		{"no file and no --sample", []string{"webhook", "send"}, "give the delivery's FILE, or --sample", "dealsync webhook send"},
		{"--completed without --writeback", []string{"runs", "retry", "--completed"}, "give it with --writeback", "dealsync runs retry"},
		{"bad flag value", []string{"runs", "retry", "--limit", "abc"}, `invalid argument "abc" for "--limit" flag`, "dealsync runs retry"},
		{"unknown command", []string{"bogus"}, `unknown command "bogus" for "dealsync"`, "dealsync"},
		{"unknown subcommand", []string{"runs", "retyr"}, `unknown command "retyr" for "dealsync runs"`, "dealsync runs"},
		// A group parses its flags first: the subcommand's flag after a
		// mistyped subcommand is not the error to name.
		{"unknown subcommand with a flag", []string{"runs", "show", "invoice/shop/R-950", "--dev"}, `unknown command "show" for "dealsync runs"`, "dealsync runs"},
		{"unknown command with a flag", []string{"lst", "--query", "x"}, `unknown command "lst" for "dealsync"`, "dealsync"},
		{"a group's unknown flag before any word", []string{"runs", "--dev"}, "unknown flag: --dev", "dealsync runs"},
		{"argument to a command that takes none", []string{"config", "check", "extra"}, `unknown command "extra" for "dealsync config check"`, "dealsync config check"},
		// A config file given without --config would be ignored, and the
		// command would start on the built-in defaults.
		{"a file to serve without --config", []string{"serve", "/etc/dealsync.yaml"}, `unknown command "/etc/dealsync.yaml" for "dealsync serve"`, "dealsync serve"},
		{"a file to worker without --config", []string{"worker", "dealsync.yaml"}, `unknown command "dealsync.yaml" for "dealsync worker"`, "dealsync worker"},
		{"a data dir to dev without --data-dir", []string{"dev", "./mydata"}, `unknown command "./mydata" for "dealsync dev"`, "dealsync dev"},
		{"an argument to sandbox", []string{"sandbox", "extra"}, `unknown command "extra" for "dealsync sandbox"`, "dealsync sandbox"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runOut(ctx, tc.args...)
			if code := exitCode(err); code != 2 {
				t.Fatalf("dealsync %s: exit %d, want 2: %v", strings.Join(tc.args, " "), code, err)
			}
			hint := "(run '" + tc.help + " --help' for usage)"
			if !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), hint) {
				t.Errorf("dealsync %s: the error does not say %q and %q:\n%v", strings.Join(tc.args, " "), tc.message, hint, err)
			}
		})
	}
}

// A command that groups others still prints its help and exits 0 when
// given no subcommand, and --help still does.
func TestGroupCommandsWithoutASubcommandPrintTheirHelp(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{}, {"runs"}, {"webhook", "send", "--help"}} {
		out, err := runOut(ctx, args...)
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Errorf("dealsync %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
