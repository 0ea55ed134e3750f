package salesforce

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
)

// describeResult is what CheckWriteBack reads of GET
// /services/data/vXX.X/sobjects/Opportunity/describe (the REST API's
// sObject Describe, DescribeSObjectResult).
type describeResult struct {
	Fields []describedField `json:"fields"`
}

// describedField is a field of a describe.
type describedField struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Length is a text field's most characters (Unicode characters, not
	// bytes); Salesforce refuses a longer value (STRING_TOO_LONG).
	Length     int  `json:"length"`
	Updateable bool `json:"updateable"`
	// RestrictedPicklist: the picklist refuses a value not among
	// PicklistValues.
	RestrictedPicklist bool `json:"restrictedPicklist"`
	PicklistValues     []struct {
		Value  string `json:"value"`
		Active bool   `json:"active"`
	} `json:"picklistValues"`
}

// textFieldTypes are the field types that take any text up to their
// length: Text (string), Text Area (textarea, long and rich ones too) and
// URL.
var textFieldTypes = map[string]bool{"string": true, "textarea": true, "url": true}

// minLength is the least length of the field of a setting, and why:
// shorter fields refuse (STRING_TOO_LONG) values the ERPs give.
var minLength = map[string]struct {
	n   int
	why string
}{
	"write_back.invoice_id_field":  {36, "an ERP's invoice id can be a UUID, as Xero's are: 36 characters"},
	"write_back.invoice_url_field": {100, "invoice links run to about 100 characters: Xero's to 94"},
}

var _ connectors.WriteBackChecker = (*Source)(nil)

// CheckWriteBack implements connectors.WriteBackChecker: for each org it
// describes the Opportunity (GET /services/data/vXX.X/sobjects/
// Opportunity/describe, the API version the source uses) and reports a
// write-back field that is not among its fields (the describe lists the
// fields the integration user can see; their names in any letter case),
// is not updateable, is not Text, Text Area or URL (a picklist holds the
// status if it is not restricted or has status_value), or is shorter than
// its value needs (for an id or a link, whose length depends on the ERP,
// a doubt: a warning).
func (s *Source) CheckWriteBack(ctx context.Context) []connectors.WriteBackCheck {
	fields := s.writeBackNames().Fields("_field")
	return crmkit.CheckAccounts(ctx, s.Accounts(), func(ctx context.Context, id string) connectors.WriteBackCheck {
		acc, err := s.account(id)
		if err != nil {
			return connectors.WriteBackCheck{Account: id, Where: "Salesforce org " + id, Err: err}
		}
		return s.checkWriteBack(ctx, acc, fields)
	})
}

func (s *Source) checkWriteBack(ctx context.Context, acc *account, fields []crmkit.WriteBackField) connectors.WriteBackCheck {
	check := crmkit.NewWriteBackCheck(acc.id, "Salesforce org "+acc.id, fields)
	if len(fields) == 0 {
		return check
	}
	var d describeResult
	callCtx, cancel := context.WithTimeout(ctx, connectors.WriteBackCheckCallTimeout)
	err := s.call(callCtx, acc, "describe opportunity", http.MethodGet, "/services/data/"+s.apiVersion+"/sobjects/Opportunity/describe", nil, &d)
	cancel()
	if err == nil {
		err = s.otherOrg(acc)
	}
	if err != nil {
		check.Err = err
		return check
	}
	for _, f := range fields {
		if problem, fix, doubt := judgeField(d.Fields, f); problem != "" {
			check.Problems = append(check.Problems, connectors.WriteBackProblem{Account: check.Where, Setting: f.Setting, Field: f.Name, Problem: problem, Fix: fix, Doubt: doubt})
		}
	}
	return check
}

// judgeField says what keeps the write-back from setting the field f
// names ("" when nothing does), and what to do.
func judgeField(all []describedField, f crmkit.WriteBackField) (problem, fix string, doubt bool) {
	const fieldsPage = "Setup → Object Manager → Opportunity → Fields & Relationships"
	text := fmt.Sprintf("create a Text field (%s → New: Text, length 255), give the integration user edit access to it, and set %s to its API name", fieldsPage, f.Setting)
	// Salesforce takes field names in any letter case.
	i := slices.IndexFunc(all, func(d describedField) bool { return strings.EqualFold(d.Name, f.Name) })
	if i < 0 {
		return "is not a field of the Opportunity that the integration user can see",
			fmt.Sprintf("create it (%s → New: Text, length 255, API name %s), or give the integration user access to it (the field → Set Field-Level Security)", fieldsPage, f.Name), false
	}
	d := all[i]
	if !d.Updateable {
		return "is not updateable by the integration user (a formula, roll-up or system field, or read-only for the user's profile and permission sets)",
			fmt.Sprintf("give the integration user edit access to it (%s → the field → Set Field-Level Security), or %s", fieldsPage, text), false
	}
	switch {
	case textFieldTypes[d.Type]:
	case (d.Type == "picklist" || d.Type == "combobox") && f.Status:
		if !d.RestrictedPicklist {
			return "", "", false
		}
		var values []string
		for _, v := range d.PicklistValues {
			if v.Active {
				values = append(values, v.Value)
			}
		}
		if slices.Contains(values, f.Value) {
			return "", "", false
		}
		return fmt.Sprintf("is a restricted picklist without the value %q, so Salesforce refuses it (values: %s)", f.Value, strings.Join(values, ", ")),
			fmt.Sprintf("add the value %s to the picklist (%s → the field → Values), or set write_back.status_value to one of its values", f.Value, fieldsPage), false
	default:
		return fmt.Sprintf("is of type %s, which cannot hold %s", d.Type, f.Holds), text, false
	}
	need, why := minLength[f.Setting].n, minLength[f.Setting].why
	if f.Status {
		need, why = utf8.RuneCountInString(f.Value), fmt.Sprintf("write_back.status_value %q", f.Value)
	}
	if d.Type != "picklist" && d.Type != "combobox" && d.Length < need {
		// The status value's length is known; an id's or a link's depends
		// on the ERP (QuickBooks' ids are short numbers): a doubt.
		return fmt.Sprintf("holds %d characters, fewer than %d (%s): Salesforce refuses a longer value (STRING_TOO_LONG)", d.Length, need, why),
			fmt.Sprintf("make it at least %d characters long (%s → the field → Edit: Length; a Text field holds up to 255)", need, fieldsPage), !f.Status
	}
	return "", "", false
}

// otherOrg is an error when the credentials configured for org acc log
// into another org: the token's answer names its org in its id
// (https://login.salesforce.com/id/<org id>/<user id>): credentials of
// another org would pass the check of that org's fields, and the runs
// of acc's messages would ask that org for their deals. Nil when the
// answer names none.
func (s *Source) otherOrg(acc *account) error {
	tok, err := acc.token.Token()
	if err != nil {
		return nil // the describe got one: nothing to compare
	}
	idURL, _ := tok.Extra("id").(string)
	parts := strings.Split(strings.TrimRight(idURL, "/"), "/")
	if len(parts) < 3 || parts[len(parts)-3] != "id" {
		return nil
	}
	org := parts[len(parts)-2]
	got, ok := caseSafeID(org)
	want, wantOK := caseSafeID(acc.id)
	if !ok || !wantOK {
		return nil
	}
	if len(acc.id) == 15 {
		// A 15-character key lost its case to the loader: its first 15
		// characters are compared ignoring case, as messages are matched.
		got, want = got[:15], want[:15]
	}
	if strings.EqualFold(got, want) {
		return nil
	}
	return otherOrgError(fmt.Sprintf("the credentials configured under %s log into Salesforce org %s, not %s: "+
		"set the key to the org id of those credentials' org (Setup → Company Information), or give the account the credentials of org %s; "+
		"every run of a message of org %s would ask org %s for its deal", s.keys.Key("accounts."+acc.id), org, acc.id, acc.id, acc.id, org))
}

// otherOrgError is otherOrg's: a refusal of the check (permanent), not
// a CRM that did not answer.
type otherOrgError string

func (e otherOrgError) Error() string { return string(e) }

func (e otherOrgError) Is(target error) bool { return target == connectors.ErrPermanent }
