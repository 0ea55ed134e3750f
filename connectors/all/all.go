// Package all registers every connector that ships with dealsync; import it
// for its side effect.
package all

import (
	_ "github.com/dealsync/dealsync/connectors/generic"    // source "generic"
	_ "github.com/dealsync/dealsync/connectors/httptarget" // target "http"
	_ "github.com/dealsync/dealsync/connectors/hubspot"    // source "hubspot"
	_ "github.com/dealsync/dealsync/connectors/netsuite"   // target "netsuite"
	_ "github.com/dealsync/dealsync/connectors/pipedrive"  // source "pipedrive"
	_ "github.com/dealsync/dealsync/connectors/quickbooks" // target "quickbooks"
	_ "github.com/dealsync/dealsync/connectors/salesforce" // source "salesforce"
	_ "github.com/dealsync/dealsync/connectors/xero"       // target "xero"
)
