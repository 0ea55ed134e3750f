package netsuite

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/dealsync/dealsync/connectors"
)

// accountIDForm is a NetSuite account id as Setup > Company > Company
// Information shows it: letters and digits ("1234567", "TSTDRV1234567"),
// a sandbox's or a release preview's with a suffix after one underscore
// ("1234567_SB1", "1234567_RP"). Its hosts are made of it (AccountHost),
// so anything else makes host names that do not resolve.
var accountIDForm = regexp.MustCompile(`^[A-Za-z0-9]+(_[A-Za-z0-9]+)?$`)

// accountHostForm is an account id as its hosts write it: lower case,
// the suffix after a '-' ("1234567-sb1").
var accountHostForm = regexp.MustCompile(`^[A-Za-z0-9]+-[A-Za-z0-9]+$`)

// AccountIDProblem says what is wrong with account_id, "" when it is an
// account id (or empty: that is the required check's). Where the value is
// a URL or a host of the account, or the id in its hosts' form
// (1234567-sb1), it says the id to write (1234567_SB1).
func AccountIDProblem(accountID string) string {
	v := strings.TrimSpace(accountID)
	if v == "" || accountIDForm.MatchString(v) {
		return ""
	}
	const what = "must be a NetSuite account id, as Setup > Company > Company Information shows it: letters and digits, " +
		"a sandbox's or a release preview's with its suffix after an underscore (1234567, 1234567_SB1, TSTDRV1234567); " +
		"dealsync makes the account's hosts of it"
	if id, kind := accountIDIn(v); id != "" {
		return fmt.Sprintf("%s; this is %s: write account_id: %q", what, kind, id)
	}
	if strings.ContainsAny(v, " \t") {
		return what + "; this has a space in it"
	}
	return what
}

// accountIDIn is the account id a URL or host of the account, or the id
// in its hosts' form, names, with what the value is; "" when it is none
// of those.
func accountIDIn(v string) (id, kind string) {
	kind = "the id as the account's host names write it"
	if _, rest, ok := strings.Cut(v, "://"); ok {
		v, kind = rest, "a URL of the account"
	}
	if i := strings.IndexAny(v, "/?#"); i >= 0 {
		v, kind = v[:i], "a URL of the account"
	}
	if i := strings.LastIndex(v, ":"); i >= 0 {
		v = v[:i] // a port
	}
	if label, rest, ok := strings.Cut(v, "."); ok {
		if !strings.HasSuffix(strings.ToLower(rest), "netsuite.com") {
			return "", ""
		}
		v = label
		if kind != "a URL of the account" {
			kind = "a host of the account"
		}
	}
	switch {
	case accountHostForm.MatchString(v):
		return strings.ToUpper(strings.Replace(v, "-", "_", 1)), kind
	case accountIDForm.MatchString(v) && kind != "the id as the account's host names write it":
		return strings.ToUpper(v), kind
	}
	return "", ""
}

// CheckConfig refuses an account_id that is not an account id
// (connectors.ConfigChecker): its hosts would not resolve, and every run
// would retry a lookup error for a day.
func (c Config) CheckConfig() []connectors.ConfigProblem {
	if msg := AccountIDProblem(c.AccountID); msg != "" {
		return []connectors.ConfigProblem{{Key: "account_id", Message: msg}}
	}
	return nil
}
