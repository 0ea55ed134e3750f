package hubspot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
)

// ScopeSchemasDealsRead is the scope HubSpot's properties API asks for to
// read the definitions of deal properties (CheckWriteBack). The
// write-back itself does not need it.
const ScopeSchemasDealsRead = "crm.schemas.deals.read"

// dealProperty is a property definition as GET
// /crm/properties/2026-03/deals/{propertyName} answers it (HubSpot's
// properties API, schema Property).
type dealProperty struct {
	Name string `json:"name"`
	// Type is the data type (string, number, date, datetime,
	// enumeration, bool, ...); FieldType how HubSpot shows it (text,
	// textarea, select, ...).
	Type      string `json:"type"`
	FieldType string `json:"fieldType"`
	// Calculated: a default property whose value a HubSpot process sets.
	Calculated bool `json:"calculated"`
	Options    []struct {
		Value string `json:"value"`
	} `json:"options"`
	ModificationMetadata *struct {
		// ReadOnlyValue: the property's value cannot be set.
		ReadOnlyValue bool `json:"readOnlyValue"`
	} `json:"modificationMetadata"`
}

var _ connectors.WriteBackChecker = (*Source)(nil)

// CheckWriteBack implements connectors.WriteBackChecker: for each portal
// it reads the definition of each configured write-back property (GET
// /crm/properties/2026-03/deals/{name}) and reports one that does not exist
// (404), whose value is read-only (modificationMetadata.readOnlyValue,
// or calculated) or whose type is not string (an enumeration holds the
// status when status_value is one of its options). The properties API
// needs the scope crm.schemas.deals.read: a portal whose app lacks it
// refuses the check (403 MISSING_SCOPES), which the error says.
func (s *Source) CheckWriteBack(ctx context.Context) []connectors.WriteBackCheck {
	fields := s.writeBackNames().Fields("_property")
	return crmkit.CheckAccounts(ctx, s.Accounts(), func(ctx context.Context, id string) connectors.WriteBackCheck {
		return s.checkWriteBack(ctx, s.accounts[id], fields)
	})
}

func (s *Source) checkWriteBack(ctx context.Context, acc *account, fields []crmkit.WriteBackField) connectors.WriteBackCheck {
	check := crmkit.NewWriteBackCheck(acc.id, "HubSpot portal "+acc.id, fields)
	for _, f := range fields {
		var p dealProperty
		callCtx, cancel := context.WithTimeout(ctx, connectors.WriteBackCheckCallTimeout)
		err := s.call(callCtx, acc, "read deal property", http.MethodGet, dealPropertyPath(f.Name), nil, &p)
		cancel()
		var apiErr *connectors.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound:
			check.Problems = append(check.Problems, connectors.WriteBackProblem{Account: check.Where, Setting: f.Setting, Field: f.Name,
				Problem: "does not exist in the portal",
				Fix:     fmt.Sprintf("create it: Settings → Properties → Deal, single-line text, internal name %s (or set %s to the internal name of the property to write)", f.Name, f.Setting)})
		case err != nil:
			check.Problems = nil
			check.Err = scopeHint(err)
			return check
		default:
			if problem, fix, doubt := judgeProperty(p, f); problem != "" {
				check.Problems = append(check.Problems, connectors.WriteBackProblem{Account: check.Where, Setting: f.Setting, Field: f.Name, Problem: problem, Fix: fix, Doubt: doubt})
			}
		}
	}
	return check
}

// judgeProperty says what keeps the write-back from setting the property
// f names ("" when nothing does), and what to do.
func judgeProperty(p dealProperty, f crmkit.WriteBackField) (problem, fix string, doubt bool) {
	create := fmt.Sprintf("create a custom deal property (Settings → Properties → Deal, single-line text) and set %s to its internal name", f.Setting)
	if (p.ModificationMetadata != nil && p.ModificationMetadata.ReadOnlyValue) || p.Calculated {
		return "is read-only: HubSpot sets its value (modificationMetadata.readOnlyValue, or a calculated property), and refuses a write to it", create, false
	}
	switch {
	case p.Type == "string":
		return "", "", false
	case p.Type == "bool" && f.Status && (f.Value == "true" || f.Value == "false"):
		return "", "", false // a checkbox takes "true" and "false"
	case p.Type == "number" && !f.Status && f.Setting != "write_back.invoice_url_property":
		// Numeric ids and numbers (QuickBooks', NetSuite's) fit; Xero's
		// UUIDs and numbers such as INV-0001 do not.
		return "is of type number: HubSpot refuses an invoice id or number that is not a number (Xero's, INV-0001)", create, true
	case p.Type == "enumeration" && f.Status:
		values := make([]string, 0, len(p.Options))
		for _, o := range p.Options {
			values = append(values, o.Value)
		}
		if slices.Contains(values, f.Value) {
			return "", "", false
		}
		return fmt.Sprintf("is a %s property of type enumeration without the option %q, so HubSpot refuses that value (options: %s)", p.FieldType, f.Value, strings.Join(values, ", ")),
			fmt.Sprintf("add an option with the internal value %s to it (Settings → Properties → Deal → the property), or set write_back.status_value to one of its options", f.Value), false
	}
	return fmt.Sprintf("is of type %s (field type %s), which cannot hold %s: HubSpot refuses the text", p.Type, p.FieldType, f.Holds), create, false
}

// scopeHint adds to a 403 MISSING_SCOPES what the check needs: the
// properties API's scope, which is the check's own need, not the
// write-back's.
func scopeHint(err error) error {
	var apiErr *connectors.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusForbidden && strings.Contains(apiErr.Message, "MISSING_SCOPES") {
		return fmt.Errorf("%w; the check reads the deal properties' definitions (GET "+propertiesPrefix+"deals/{name}), which needs the scope %s: "+
			"add it to the app's scopes (a public app is then installed again), or look at the properties by hand (Settings → Properties → Deal). "+
			"This is the check's own scope: the write-back needs crm.objects.deals.write only", err, ScopeSchemasDealsRead)
	}
	return err
}
