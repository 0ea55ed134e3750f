// Package histories keeps the histories of InvoiceDeal runs as JSON files
// (the format of `temporal workflow show --output json`), so that every
// change to package workflows is replayed against runs made by earlier
// code: the end-to-end tests record them when DEALSYNC_RECORD_HISTORIES is
// set, and package workflows replays every kept file in its tests. A run in
// flight during an upgrade is replayed by the new code exactly like that.
package histories

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

// Env turns recording on (any non-empty value) in the tests that record.
const Env = "DEALSYNC_RECORD_HISTORIES"

// Dir is where the histories are kept, relative to the module's root.
const Dir = "workflows/testdata/histories"

// Recording says whether the tests should record histories.
func Recording() bool { return os.Getenv(Env) != "" }

// Record writes the history of a run (runID "" for the latest) to
// dir/name.json. A file that exists is kept as it is: histories of older
// code are what the replay test is for, so a new shape of history gets a
// new name, never an overwritten file. It reports whether it wrote.
func Record(ctx context.Context, c client.Client, dir, workflowID, runID, name string) (bool, error) {
	path := filepath.Join(dir, name+".json")
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	var h historypb.History
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return false, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		h.Events = append(h.Events, ev)
	}
	if len(h.Events) == 0 {
		return false, fmt.Errorf("history of %s is empty", workflowID)
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(&h)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	return true, os.WriteFile(path, append(b, '\n'), 0o644)
}
