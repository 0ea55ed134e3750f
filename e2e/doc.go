// Package e2e holds dealsync's end-to-end tests: each starts the real
// all-in-one stack (an embedded Temporal server, the worker, the intake and
// the sandbox ERP) in the test process and talks to it over real HTTP with
// signatures computed as the vendors document them.
package e2e
