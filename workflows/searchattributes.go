package workflows

import (
	"math"

	"github.com/shopspring/decimal"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// Custom search attributes an operator filters runs by in the Web UI, e.g.
// `SyncStatus = "failed" AND Connection = "demo"`. None holds personal data:
// search attributes are not encrypted by a payload codec.
var (
	DealIDKey       = temporal.NewSearchAttributeKeyKeyword("DealId")
	ConnectionKey   = temporal.NewSearchAttributeKeyKeyword("Connection")
	AmountKey       = temporal.NewSearchAttributeKeyFloat64("Amount")
	CurrencyKey     = temporal.NewSearchAttributeKeyKeyword("Currency")
	ErpInvoiceIDKey = temporal.NewSearchAttributeKeyKeyword("ErpInvoiceId")
	SyncStatusKey   = temporal.NewSearchAttributeKeyKeyword("SyncStatus")
	// CrmAccountKey is the CRM account (HubSpot portal, Salesforce org,
	// Pipedrive company) of a connection that serves several.
	CrmAccountKey = temporal.NewSearchAttributeKeyKeyword("CrmAccount")
	// ChangedAfterInvoiceKey is set when a deal that was already invoiced
	// changed again: no second invoice is made, the operator can look.
	ChangedAfterInvoiceKey = temporal.NewSearchAttributeKeyBool("ChangedAfterInvoice")
)

// Values of SyncStatus.
const (
	StatusPending  = "pending"
	StatusInvoiced = "invoiced"
	StatusFailed   = "failed"
)

// AmountValue is d as the Amount search attribute holds it, false for an
// amount no float holds (a huge number): the SDK cannot encode it, and
// refuses every attribute of the update or the start that carries it.
func AmountValue(d decimal.Decimal) (float64, bool) {
	f := d.InexactFloat64()
	return f, !math.IsInf(f, 0) && !math.IsNaN(f)
}

// SearchAttributeTypes lists the custom search attributes to register on a
// namespace (`dealsync dev` does it; on a cluster see the README).
func SearchAttributeTypes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		DealIDKey.GetName():              enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		ConnectionKey.GetName():          enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AmountKey.GetName():              enumspb.INDEXED_VALUE_TYPE_DOUBLE,
		CurrencyKey.GetName():            enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		ErpInvoiceIDKey.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SyncStatusKey.GetName():          enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		CrmAccountKey.GetName():          enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		ChangedAfterInvoiceKey.GetName(): enumspb.INDEXED_VALUE_TYPE_BOOL,
	}
}

// Listens reads MemoListens from a run's memo. A run without it (started
// by an intake older than the memo) may listen: true.
func Listens(memo *commonpb.Memo) bool {
	p := memo.GetFields()[MemoListens]
	listens := true
	return p == nil || converter.GetDefaultDataConverter().FromPayload(p, &listens) != nil || listens
}
