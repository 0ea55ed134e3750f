package pipedrive

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/crmkit"
)

// Archived deals. Since 15 July 2025 Pipedrive's deals lists leave
// archived deals out (they are at GET /api/v2/deals/archived) and its API
// no longer edits them: PATCH /api/v2/deals/{id} is among the endpoints
// its changelog names ("Breaking change: archived deals and leads will not
// be returned in existing endpoints and will not be editable"). What that
// PATCH answers (status, error text) is not documented, so dealsync does
// not wait for it: WriteBack reads the deal first and does not send the
// PATCH to an archived one (see ArchivedDealError).

// archiveRaw puts is_archived (when known) and archive_time (when set) in
// a deal's Raw, as API v2 and webhooks v2 carry them, so that triggers
// and mappings can read them: deal.raw["is_archived"] is true or false.
func archiveRaw(raw map[string]json.RawMessage, isArchived *bool, archiveTime *string) {
	if isArchived != nil {
		raw["is_archived"] = json.RawMessage(fmt.Sprint(*isArchived))
	}
	if archiveTime != nil && strings.TrimSpace(*archiveTime) != "" {
		raw["archive_time"] = crmkit.JSONString(strings.TrimSpace(*archiveTime))
	}
}

// ArchivedDealError is a write-back that was not made because the deal is
// archived in Pipedrive, whose API does not edit archived deals. It is
// permanent (errors.Is connectors.ErrPermanent: the run's write-back is not
// retried, and ends WriteBackFailed as CRMRejected): only a person can
// unarchive the deal, after which `dealsync runs retry --writeback` writes
// the invoice back.
type ArchivedDealError struct {
	Company, DealID string
	// ArchiveTime is the deal's archive_time, "" when not given.
	ArchiveTime string
	// Invoice is the invoice that was to be written back.
	Invoice connectors.InvoiceResult
	// Refusal is Pipedrive's answer to a PATCH it refused, nil when none
	// was sent (the deal was found archived before).
	Refusal error
}

func (e *ArchivedDealError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pipedrive: deal %s of company %s is archived in Pipedrive", e.DealID, e.Company)
	if e.ArchiveTime != "" {
		fmt.Fprintf(&b, " (since %s)", e.ArchiveTime)
	}
	b.WriteString(", and Pipedrive's API does not edit archived deals (since 15 July 2025), so the invoice was not written back to it")
	if e.Refusal != nil {
		fmt.Fprintf(&b, " (the deal was archived when Pipedrive refused the write-back: %v)", e.Refusal)
	} else {
		b.WriteString(" (nothing was sent to the deal)")
	}
	inv := "id " + e.Invoice.InvoiceID
	if e.Invoice.Number != "" {
		inv += ", number " + e.Invoice.Number
	}
	fmt.Fprintf(&b, ". The invoice exists in the ERP (%s) and is not made again. "+
		"To record it on the deal, unarchive the deal in Pipedrive, then run dealsync runs retry --writeback --query 'DealId = %q AND CrmAccount = %q' "+
		"(a run that only writes this invoice back); if the deal is to stay archived, leave this run failed: only the write-back is missing", inv, e.DealID, e.Company)
	return b.String()
}

// Is makes the error connectors.ErrPermanent: not retried.
func (e *ArchivedDealError) Is(target error) bool { return target == connectors.ErrPermanent }

// Unwrap is Pipedrive's refusal, when a PATCH was refused.
func (e *ArchivedDealError) Unwrap() error { return e.Refusal }

// archivedBeforeWriteBack reads the deal (GET /api/v2/deals/{id}, 1 API
// token; the PATCH costs 5) before its write-back and answers an
// ArchivedDealError when it is archived. The changelog does not list GET
// /api/v2/deals/{id} among the endpoints that leave archived deals out,
// so it is taken to answer an archived deal with is_archived true, as the
// API reference's schema has it (not verified against the live API; were
// it to answer 404 instead, the PATCH is sent and its answer reported as
// before). Each attempt reads the deal anew: it may have been archived
// after the run fetched it, and a run of `runs retry --writeback` does not
// fetch it. A read that was not answered (a 5xx, a 429, the network) is
// returned, and the attempt retried; one that was refused otherwise (404
// for a deleted deal) lets the PATCH go, whose answer says what is wrong,
// as it did before this check.
func (s *Source) archivedBeforeWriteBack(ctx context.Context, acc *account, dealID string, result connectors.InvoiceResult) error {
	var pd pdDeal
	_, err := s.call(ctx, acc, "check deal before write-back", http.MethodGet, "/api/v2/deals/"+dealID, nil, &pd)
	if err != nil {
		if c, _ := connectors.Classify(err); c == connectors.Permanent {
			return nil
		}
		return err
	}
	if !pd.IsArchived {
		return nil
	}
	return &ArchivedDealError{Company: acc.id, DealID: dealID, ArchiveTime: archiveTimeOf(pd), Invoice: result}
}

// archivedAfterRefusal tells a PATCH refused (refusal: a 4xx, whatever
// its text, which Pipedrive does not document for an archived deal)
// because the deal was archived after archivedBeforeWriteBack read it:
// it reads the deal again and answers an ArchivedDealError wrapping the
// refusal when it is archived now, else the refusal.
func (s *Source) archivedAfterRefusal(ctx context.Context, acc *account, dealID string, result connectors.InvoiceResult, refusal error) error {
	if c, _ := connectors.Classify(refusal); c != connectors.Permanent && c != connectors.Unauthorized {
		return refusal // not a refusal: retried
	}
	var pd pdDeal
	if _, err := s.call(ctx, acc, "check deal after refused write-back", http.MethodGet, "/api/v2/deals/"+dealID, nil, &pd); err != nil || !pd.IsArchived {
		return refusal
	}
	return &ArchivedDealError{Company: acc.id, DealID: dealID, ArchiveTime: archiveTimeOf(pd), Invoice: result, Refusal: refusal}
}

func archiveTimeOf(pd pdDeal) string {
	if pd.ArchiveTime == nil {
		return ""
	}
	return strings.TrimSpace(*pd.ArchiveTime)
}
