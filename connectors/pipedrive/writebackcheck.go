package pipedrive

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
)

// pdDealField is a deal field as GET /api/v2/dealFields lists it.
type pdDealField struct {
	FieldCode     string `json:"field_code"`
	FieldName     string `json:"field_name"`
	FieldType     string `json:"field_type"`
	IsCustomField bool   `json:"is_custom_field"`
}

// textFieldTypes are the deal field types whose value is text, as the
// write-back writes it: Text (varchar, 255 characters), Autocomplete
// (varchar_auto) and Large text (text).
var textFieldTypes = map[string]bool{"varchar": true, "varchar_auto": true, "text": true}

// fieldTypeNames are some field types as Pipedrive's settings name them.
var fieldTypeNames = map[string]string{
	"enum": "Single option", "set": "Multiple options", "double": "Numerical", "int": "Numerical",
	"monetary": "Monetary", "date": "Date", "daterange": "Date range", "time": "Time", "timerange": "Time range",
	"phone": "Phone", "address": "Address", "user": "User", "org": "Organization", "people": "Person",
	"boolean": "Checkbox",
}

// fieldKind is a field type as messages name it: the API's type, with the
// name Pipedrive's settings give it where known ("enum (Single option)").
func fieldKind(fieldType string) string {
	if n := fieldTypeNames[fieldType]; n != "" {
		return fieldType + " (" + n + ")"
	}
	return fieldType
}

var _ connectors.WriteBackChecker = (*Source)(nil)

// CheckWriteBack implements connectors.WriteBackChecker: for each company
// it lists the deal fields (GET /api/v2/dealFields, every page) and
// reports a configured write-back key that is not a deal field of the
// company, not a custom field, or of a type whose value is not text
// (anything but varchar, varchar_auto and text: an enum takes an
// option's id). API v2 says nothing of a field being read-only.
func (s *Source) CheckWriteBack(ctx context.Context) []connectors.WriteBackCheck {
	fields := s.writeBackNames().Fields("_field")
	return crmkit.CheckAccounts(ctx, s.Accounts(), func(ctx context.Context, id string) connectors.WriteBackCheck {
		return s.checkWriteBack(ctx, s.accounts[id], fields)
	})
}

func (s *Source) checkWriteBack(ctx context.Context, acc *account, fields []crmkit.WriteBackField) connectors.WriteBackCheck {
	check := crmkit.NewWriteBackCheck(acc.id, "Pipedrive company "+acc.id, fields)
	if len(fields) == 0 {
		return check
	}
	all, err := s.dealFields(ctx, acc)
	if err != nil {
		check.Err = err
		return check
	}
	text := "use a custom deal field of type Text (Company settings → Data fields → Deal) and set %s to its API key"
	for _, f := range fields {
		p := connectors.WriteBackProblem{Account: check.Where, Setting: f.Setting, Field: f.Name}
		d, ok := all[f.Name]
		switch {
		case !ok:
			p.Problem = "is not the key of a deal field of the company (deleted, mistyped, or another company's: each company's fields have their own keys)"
			p.Fix = fmt.Sprintf("copy the field's key (Company settings → Data fields → Deal → the field → API key), or create a field of type Text there, and set %s to it", f.Setting)
		case !d.IsCustomField:
			p.Problem = fmt.Sprintf("is Pipedrive's own deal field %q, not a custom field: the write-back sets custom_fields", d.FieldName)
			p.Fix = fmt.Sprintf(text, f.Setting)
		case !textFieldTypes[d.FieldType]:
			p.Problem = fmt.Sprintf("is the field %q of type %s, which cannot hold %s: the write-back writes text", d.FieldName, fieldKind(d.FieldType), f.Holds)
			if d.FieldType == "enum" || d.FieldType == "set" {
				p.Problem += ", and the field takes the id of one of its options"
			}
			p.Fix = fmt.Sprintf(text, f.Setting)
		default:
			continue
		}
		check.Problems = append(check.Problems, p)
	}
	return check
}

// dealFields lists the company's deal fields by key (GET
// /api/v2/dealFields, every page, each page's call bounded by
// connectors.WriteBackCheckCallTimeout).
func (s *Source) dealFields(ctx context.Context, acc *account) (map[string]pdDealField, error) {
	return s.fields(ctx, acc, "deal", "/api/v2/dealFields")
}

// fields lists the company's fields of an object (deal, organization) by
// key from path (every page, each page's call bounded by
// connectors.WriteBackCheckCallTimeout): the lists of API v2 give deal and
// organization fields alike.
func (s *Source) fields(ctx context.Context, acc *account, object, path string) (map[string]pdDealField, error) {
	out := map[string]pdDealField{}
	cursor := ""
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, permanent("company %s has more than %d pages of %s fields", acc.id, maxPages, object)
		}
		q := url.Values{"limit": {"500"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var list []pdDealField
		callCtx, cancel := context.WithTimeout(ctx, connectors.WriteBackCheckCallTimeout)
		env, err := s.call(callCtx, acc, "list "+object+" fields", http.MethodGet, path+"?"+q.Encode(), nil, &list)
		cancel()
		if err != nil {
			return nil, err
		}
		for _, f := range list {
			out[f.FieldCode] = f
		}
		if env.AdditionalData.NextCursor == nil || *env.AdditionalData.NextCursor == "" {
			return out, nil
		}
		cursor = *env.AdditionalData.NextCursor
	}
}
