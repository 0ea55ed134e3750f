package connectors

import (
	"context"
	"fmt"
	"time"
)

// WriteBackChecker is implemented by sources that can ask their CRM,
// read-only, whether the deal fields the write-back sets exist and can be
// written (`dealsync config check --crm`). A write-back field that is
// missing, read-only or of a type that cannot hold its value is otherwise
// found only after the invoice exists: every deal's run then ends
// WriteBackFailed.
type WriteBackChecker interface {
	// CheckWriteBack asks the CRM of every configured account, reading
	// only, each call bounded by WriteBackCheckCallTimeout, and returns
	// one WriteBackCheck per account, sorted by account.
	CheckWriteBack(ctx context.Context) []WriteBackCheck
}

// FetchFieldChecker is implemented by sources that can ask their CRM,
// read-only, whether the fields their fetch reads by a setting exist and
// hold what it reads (Pipedrive's fetch.organization_email_field names an
// organization custom field by its key): one that does not is read empty
// from every deal, which nothing else tells. `dealsync config check --crm`
// asks it as it asks a WriteBackChecker.
type FetchFieldChecker interface {
	// CheckFetchFields is CheckWriteBack for the fields the fetch reads:
	// one WriteBackCheck per account, whose Fields are the configured
	// fetch fields (none: nothing is asked) and whose Problems name the
	// fetch's settings.
	CheckFetchFields(ctx context.Context) []WriteBackCheck
}

// WriteBackCheckCallTimeout bounds each API call of a CheckWriteBack.
const WriteBackCheckCallTimeout = 15 * time.Second

// WriteBackCheck is what one CRM account answered about the write-back
// fields.
type WriteBackCheck struct {
	// Account is the account as configured; Where names it for people,
	// with the vendor's word for it ("HubSpot portal 62515").
	Account, Where string
	// Fields are the write-back fields that were asked about, as
	// configured, in the settings' order; none when the source writes
	// nothing back.
	Fields []string
	// Problems are the fields the write-back would fail on.
	Problems []WriteBackProblem
	// Err is set when the CRM could not be asked (it did not answer, or it
	// refused the credentials or the check's own scope): the fields were
	// not judged, and Problems is empty.
	Err error
}

// Unanswered reports whether Err is the CRM not answering (a network
// error, a timeout, a 5xx or a 429), which asking again later may mend,
// rather than a refusal of the check.
func (c WriteBackCheck) Unanswered() bool {
	if c.Err == nil {
		return false
	}
	class, _ := Classify(c.Err)
	return class == Retry || class == RetryAfter
}

// WriteBackProblem is a write-back field the CRM would refuse to set.
type WriteBackProblem struct {
	// Account names the CRM account as WriteBackCheck.Where does.
	Account string
	// Setting is the source's config key ("write_back.invoice_id_property")
	// and Field its value, the CRM's name of the field.
	Setting, Field string
	// Problem says what is wrong ("does not exist"), Fix what to do.
	Problem, Fix string
	// Doubt: the field refuses only some values, which depend on the ERP
	// (a number field takes QuickBooks' numeric ids, not Xero's UUIDs; a
	// short text field takes a short id): a warning, not a refusal.
	Doubt bool
}

func (p WriteBackProblem) String() string {
	if p.Doubt {
		return fmt.Sprintf("%s: %s %q %s, depending on the ERP's values: %s", p.Account, p.Setting, p.Field, p.Problem, p.Fix)
	}
	return fmt.Sprintf("%s: %s %q %s: %s", p.Account, p.Setting, p.Field, p.Problem, p.Fix)
}
