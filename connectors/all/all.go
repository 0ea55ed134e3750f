// Package all registers every connector that ships with dealsync; import it
// for its side effect.
package all

import (
	_ "github.com/dealsync/dealsync/connectors/generic"    // source "generic"
	_ "github.com/dealsync/dealsync/connectors/httptarget" // target "http"
)
