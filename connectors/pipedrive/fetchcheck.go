package pipedrive

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
	"github.com/dealsync/dealsync/internal/wording"
)

// readableFieldTypes are the organization field types whose value the
// fetch reads as text (customText): Text (varchar), Autocomplete
// (varchar_auto), Large text (text), and a number (a tax number kept as
// one), taken as written.
var readableFieldTypes = map[string]bool{"varchar": true, "varchar_auto": true, "text": true, "int": true, "double": true}

var _ connectors.FetchFieldChecker = (*Source)(nil)

// orgField is a fetch setting that names an organization custom field.
type orgField struct {
	setting, key, holds string
}

// fetchFields are the configured fetch settings, in the config's order.
func (s *Source) fetchFields() []orgField {
	var out []orgField
	for _, f := range []orgField{
		{"fetch.organization_email_field", s.fetch.OrganizationEmailField, "the customer's e-mail"},
		{"fetch.organization_tax_id_field", s.fetch.OrganizationTaxIDField, "the customer's tax id"},
	} {
		if f.key != "" { // trimmed by New, as the fetch reads it
			out = append(out, f)
		}
	}
	return out
}

// CheckFetchFields implements connectors.FetchFieldChecker: for each
// company it lists the organization fields (GET
// /api/v2/organizationFields, every page) and reports a configured
// fetch.organization_*_field that is not the key of one of them (saying
// which it may have meant: the field whose name it is, or whose key or
// name it is a typo of), is Pipedrive's own field (its key, or its name
// in place of a key: the fetch reads the custom fields), or is of a type
// whose value is not text or a number.
// Such a field is read empty from every deal's organization.
func (s *Source) CheckFetchFields(ctx context.Context) []connectors.WriteBackCheck {
	fields := s.fetchFields()
	return crmkit.CheckAccounts(ctx, s.Accounts(), func(ctx context.Context, id string) connectors.WriteBackCheck {
		acc := s.accounts[id]
		check := connectors.WriteBackCheck{Account: acc.id, Where: "Pipedrive company " + acc.id}
		for _, f := range fields {
			check.Fields = append(check.Fields, f.key)
		}
		if len(fields) == 0 {
			return check
		}
		all, err := s.fields(ctx, acc, "organization", "/api/v2/organizationFields")
		if err != nil {
			check.Err = err
			return check
		}
		for _, f := range fields {
			if p, bad := orgFieldProblem(all, f); bad {
				p.Account = check.Where
				check.Problems = append(check.Problems, p)
			}
		}
		return check
	})
}

// orgFieldProblem is what is wrong with the organization field f names
// among all (by key), if anything.
func orgFieldProblem(all map[string]pdDealField, f orgField) (connectors.WriteBackProblem, bool) {
	p := connectors.WriteBackProblem{Setting: f.setting, Field: f.key}
	where := "Company settings → Data fields → Organization → the field → API key"
	text := fmt.Sprintf("use a custom organization field of type Text (Company settings → Data fields → Organization) and set %s to its API key", f.setting)
	d, ok := all[f.key]
	switch {
	case !ok:
		p.Problem = "is not the key of an organization field of the company"
		p.Fix = fmt.Sprintf("copy the field's key (%s) and set %s to it", where, f.setting)
		if meant, ok := meantField(all, f.key); ok {
			if !meant.IsCustomField {
				p.Problem += fmt.Sprintf(", but names Pipedrive's own organization field %q (key %s), not a custom field: the fetch reads %s from the organization's custom fields",
					meant.FieldName, meant.FieldCode, f.holds)
				p.Fix = text
			} else if strings.EqualFold(meant.FieldName, f.key) {
				p.Problem += fmt.Sprintf(", but the name of the field %q", meant.FieldName)
				p.Fix = fmt.Sprintf("set %s to %q, its key", f.setting, meant.FieldCode)
			} else {
				p.Problem += fmt.Sprintf("; did you mean %q (the field %q)?", meant.FieldCode, meant.FieldName)
				p.Fix = fmt.Sprintf("set %s to %q, if that is the field that holds %s (%s)", f.setting, meant.FieldCode, f.holds, where)
			}
		} else {
			p.Problem += " (deleted, mistyped, or another company's: each company's fields have their own keys)"
		}
	case !d.IsCustomField:
		p.Problem = fmt.Sprintf("is Pipedrive's own organization field %q, not a custom field: the fetch reads %s from the organization's custom fields", d.FieldName, f.holds)
		p.Fix = text
	case !readableFieldTypes[d.FieldType]:
		p.Problem = fmt.Sprintf("is the field %q of type %s, whose value is not %s as text", d.FieldName, fieldKind(d.FieldType), f.holds)
		if d.FieldType == "enum" || d.FieldType == "set" {
			p.Problem += ": it holds the id of one of its options"
		}
		p.Fix = text
	default:
		return p, false
	}
	return p, true
}

// meantField is the field key most likely meant: the custom field whose
// name it is (letter case aside); else Pipedrive's own field whose name
// or key it is (letter case aside: "Name", a built-in field's display
// name, is no custom field's key either); else the custom field whose key
// or name it is a typo of (wording.TypoOf), keys first.
func meantField(all map[string]pdDealField, key string) (pdDealField, bool) {
	var codes, names []string
	byName := map[string]pdDealField{}
	var builtin *pdDealField
	for _, code := range slices.Sorted(maps.Keys(all)) {
		d := all[code]
		if !d.IsCustomField {
			if builtin == nil && (strings.EqualFold(d.FieldName, key) || strings.EqualFold(code, key)) {
				builtin = &d
			}
			continue
		}
		codes = append(codes, code)
		if _, dup := byName[d.FieldName]; !dup {
			byName[d.FieldName] = d
			names = append(names, d.FieldName)
		}
	}
	for _, n := range names {
		if strings.EqualFold(n, key) {
			return byName[n], true
		}
	}
	if builtin != nil {
		return *builtin, true
	}
	if code, ok := wording.TypoOf(key, codes); ok {
		return all[code], true
	}
	if name, ok := wording.TypoOf(key, names); ok {
		return byName[name], true
	}
	return pdDealField{}, false
}
