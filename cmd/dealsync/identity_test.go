package main

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/spf13/cobra"

	"github.com/dealsync/dealsync/config"
)

// A command that talks to Temporal (runs retry) is named in its client's
// identity, which the Web UI shows on the events it caused: run where a
// worker's or an intake's DEALSYNC_LOG_REPLICA is set (its container), it
// does not pass for that process, whose log says nothing of it.
func TestCommandsNameThemselvesToTemporal(t *testing.T) {
	host, _ := os.Hostname()
	for _, c := range []struct {
		replica, want string
	}{
		{"", fmt.Sprintf("%d@%s@dealsync runs retry", os.Getpid(), host)},
		{"worker-eu-1", "worker-eu-1@dealsync runs retry"},
	} {
		t.Setenv("DEALSYNC_LOG_REPLICA", c.replica)
		root := newRoot()
		retry, _, err := root.Find([]string{"runs", "retry"})
		if err != nil {
			t.Fatal(err)
		}
		var identity string
		retry.RunE = func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load("")
			if err != nil {
				return err
			}
			copts, err := commandClientOptions(cmd.Context(), cfg, quietLogger())
			identity = copts.Identity
			return err
		}
		root.SetArgs([]string{"runs", "retry"})
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatal(err)
		}
		if identity != c.want {
			t.Errorf("log.replica %q: identity %q, want %q", c.replica, identity, c.want)
		}
	}
}
