package devserver

import (
	"database/sql"
	"fmt"

	_ "modernc.org/sqlite" // the "sqlite" driver the server's own plugin uses
)

// unusedVisibilityIndexes are indexes of Temporal's SQLite visibility
// schema (schema/sqlite/v3/visibility) that no query of dealsync, of its
// CLI or of the Web UI's run list needs. The schema indexes every column
// a filter may name, 58 indexes in all, and every visibility write (a
// run's start row and its close row) updates each of them: in the
// benchmark that was the largest single cost of a run (docs/benchmarks.md,
// "Fourth pass"). A filter on a column listed here still works, by
// scanning the run list: slower on a large one (runs are kept for the
// dev retention, 30 days by default), for filters dealsync never uses.
//
// Kept: the default order (default_idx), the filters of the run list and
// of dealsync's commands (workflow id and type, status, task queue,
// execution time), every custom search attribute column of the types
// dealsync registers (Keyword, Double, Bool), and the namespace-division
// filter the server adds to every list query.
var unusedVisibilityIndexes = []string{
	"by_history_length",
	"by_history_size_bytes",
	"by_execution_duration",
	"by_state_transition_count",
	"by_parent_workflow_id",
	"by_parent_run_id",
	"by_root_workflow_id",
	"by_root_run_id",
	"by_batcher_user",
	"by_temporal_scheduled_start_time",
	"by_temporal_scheduled_by_id",
	"by_temporal_schedule_paused",
	"by_temporal_pause_info",
	"by_temporal_worker_deployment_version",
	"by_temporal_workflow_versioning_behavior",
	"by_temporal_worker_deployment",
	"by_datetime_01",
	"by_datetime_02",
	"by_datetime_03",
	"by_int_01",
	"by_int_02",
	"by_int_03",
	"by_temporal_bool_01",
	"by_temporal_bool_02",
	"by_temporal_datetime_01",
	"by_temporal_datetime_02",
	"by_temporal_double_01",
	"by_temporal_double_02",
	"by_temporal_int_01",
	"by_temporal_int_02",
	"by_temporal_keyword_01",
	"by_temporal_keyword_02",
	"by_temporal_keyword_03",
	"by_temporal_keyword_04",
	"by_temporal_low_cardinality_keyword_01",
}

// dropUnusedVisibilityIndexes drops unusedVisibilityIndexes from the SQLite
// file holding the visibility tables, before the server opens it. It is
// idempotent, so a data dir made before this existed gets the same
// lighter schema at its next start.
func dropUnusedVisibilityIndexes(file string) error {
	db, err := sql.Open("sqlite", file)
	if err != nil {
		return fmt.Errorf("opening %s: %w", file, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, name := range unusedVisibilityIndexes {
		if _, err := db.Exec("DROP INDEX IF EXISTS " + name); err != nil {
			return fmt.Errorf("dropping visibility index %s in %s: %w", name, file, err)
		}
	}
	return nil
}

// checkpoint writes a WAL-mode SQLite file's log back into it and empties
// the log (PRAGMA wal_checkpoint(TRUNCATE)).
func checkpoint(file string) error {
	db, err := sql.Open("sqlite", file)
	if err != nil {
		return err
	}
	defer db.Close()
	var busy, logged, written int
	if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logged, &written); err != nil {
		return err
	}
	if busy != 0 {
		return fmt.Errorf("the checkpoint was blocked (%d of %d pages written back)", written, logged)
	}
	return nil
}
