// Package examples holds dealsync's sample deal, built into the binary so
// that `dealsync webhook send --sample` works where the repository is not:
// a dealsync installed with `go install` and run anywhere.
package examples

import _ "embed"

// ClosedWon is examples/closed-won.json: a generic-source event of a deal
// that became closed-won, the delivery the README's tour sends.
//
//go:embed closed-won.json
var ClosedWon []byte
