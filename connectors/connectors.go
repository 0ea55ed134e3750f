// Package connectors defines what a CRM source and an ERP target must do and
// keeps the registry through which each connector package makes itself
// available by name ("generic", "http", ...) together with its config spec.
// Connectors are plain Go: no Temporal in here or below.
package connectors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dealsync/dealsync/internal/jsonpos"
	"github.com/dealsync/dealsync/model"
)

// Webhook is one HTTP delivery exactly as received, before any parsing.
type Webhook struct {
	Method string
	// URL is the public URL the sender called, query included. Behind a
	// proxy it is the configured public base URL plus the request URI.
	URL      string
	Header   http.Header
	Body     []byte
	Received time.Time
	// PreviousSecret is set by Verify when the delivery was admitted by a
	// secret being rotated out (a previous_… key) and by no current one:
	// the intake counts them, so operators see when the CRM has switched.
	PreviousSecret bool
	// Dropped is set by Parse to the events it left out because their
	// CRM account is not listed, in a delivery that also carries listed
	// accounts' events (a HubSpot batch of several portals), each with
	// why: the intake answers each with its reason (skipped) and counts it
	// as dropped.
	Dropped []IgnoredEvent
	// Unreadable is set by Parse to why it left out events it could not
	// read, in a delivery whose other events it could (a batch with one
	// malformed event): the intake acknowledges the others and reports
	// these. A CRM would send the same bytes again, which could not be
	// read again, and one that does not retry a 400 (HubSpot) would lose
	// the batch's good events with them.
	Unreadable []error
	// Ignored is set by Parse to the events it read and left out as not
	// about a deal's state: another object's event, a deletion, dealsync's
	// own write-back coming back. The intake answers each with its reason
	// (skipped) and counts it as ignored, so that every event of a
	// delivery is accounted for.
	Ignored []IgnoredEvent
	// Log is the logger of the delivery's receiver (the intake's, naming
	// its component and the connection): Parse logs what it says of the
	// delivery through it (LogOf), nil when there is none.
	Log *slog.Logger
}

// LogOf is w's logger (Webhook.Log), or fallback when it has none.
func (w *Webhook) LogOf(fallback *slog.Logger) *slog.Logger {
	if w != nil && w.Log != nil {
		return w.Log
	}
	return fallback
}

type loggerKey struct{}

// WithLogger gives ctx the logger of whoever calls a source with it (the
// intake's, naming its component and the connection, for an
// EventResolver's Resolve): what the source logs on that call goes there
// (LoggerFrom), beside that caller's own lines.
func WithLogger(ctx context.Context, log *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, log)
}

// LoggerFrom is the logger ctx carries (WithLogger), or fallback.
func LoggerFrom(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return fallback
}

// IgnoredEvent is an event Parse read and left out, and why (Ignored,
// Dropped).
type IgnoredEvent struct {
	EventID string
	DealID  string // when the event names a deal
	Reason  string
}

// UnreadableEvent is an error of Webhook.Unreadable that knows the id of
// the event it left out (its text names it too): the intake's answer and
// log give it as the event's id.
type UnreadableEvent struct {
	EventID string
	Err     error
}

func (e *UnreadableEvent) Error() string { return e.Err.Error() }
func (e *UnreadableEvent) Unwrap() error { return e.Err }

// UnreadableEventID is the id of the event err left out, when it knows it
// (an *UnreadableEvent), else "".
func UnreadableEventID(err error) string {
	var ue *UnreadableEvent
	if errors.As(err, &ue) {
		return ue.EventID
	}
	return ""
}

// UnreadableError is the error of a delivery none of whose events could
// be read: the first one's, with the count of the others (events, or the
// source's word for them), and Unreadable cleared.
func (w *Webhook) UnreadableError(what string) error {
	err := w.Unreadable[0]
	if n := len(w.Unreadable); n > 1 {
		err = fmt.Errorf("%w (and %d more %s that cannot be read)", err, n-1, what)
	}
	w.Unreadable = nil
	return err
}

// Sentinel errors a Source wraps so the intake can pick the status code.
var (
	// ErrUnauthorized: missing, wrong or stale signature/credentials → 401.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrMalformed: the body is not what the source type expects → 400.
	ErrMalformed = errors.New("malformed payload")
	// ErrUnknownAccount: a verified event from a CRM account this
	// connection is not configured for → 403.
	ErrUnknownAccount = errors.New("account not configured")
	// ErrCRMUnavailable: the delivery could not be judged because the
	// CRM's API did not answer (an EventResolver's look-up) → 503, so the
	// CRM delivers it again later.
	ErrCRMUnavailable = errors.New("CRM API unavailable")
)

// RetryAter is implemented by an error that knows when asking again may
// succeed (a CRM look-up not repeated before then): the intake's 503
// says it in Retry-After.
type RetryAter interface {
	RetryAt() time.Time
}

// Challenger is implemented by sources whose webhooks authenticate with
// an HTTP authentication scheme (Pipedrive's Basic): the intake's 401
// carries the challenge in WWW-Authenticate, as RFC 9110 (11.6.1) wants
// of a 401. Sources that sign their bodies have no such scheme.
type Challenger interface {
	Challenge() string
}

// RawFielder is implemented by sources whose fetched deals have a known
// set of Deal.Raw keys (Salesforce's and HubSpot's fetches select their
// fields; Pipedrive's keeps a few ids and its custom fields). A mapping
// that reads another key reads "" from every deal, which it cannot tell
// from an empty field: config check and the start warn of it.
type RawFielder interface {
	// RawFields are the keys of a fetched deal's Raw.
	RawFields() RawFieldSet
}

// CompanyFielder is implemented by sources that leave a company's email
// or tax id empty unless a setting names where the CRM keeps it (HubSpot,
// Salesforce and Pipedrive have no standard field for them). A mapping
// that reads one unset reads "" from every deal: config check and the
// start warn of it.
type CompanyFielder interface {
	// UnsetCompanyFields are the fields of deal.company ("email",
	// "tax_id") the source leaves empty, each with the setting that
	// would fill it ("fetch.company_tax_id_property").
	UnsetCompanyFields() map[string]string
}

// UnsetCompanyFields is CompanyFielder's answer for a source with the
// settings email and taxID (whose values are emailValue and taxIDValue).
func UnsetCompanyFields(email, emailValue, taxID, taxIDValue string) map[string]string {
	unset := map[string]string{}
	if emailValue == "" {
		unset["email"] = email
	}
	if taxIDValue == "" {
		unset["tax_id"] = taxID
	}
	return unset
}

// RawFieldSet is what a RawFielder's deals have in Deal.Raw.
type RawFieldSet struct {
	// Exact are keys as spelt; AnyCase keys in the vendor's spelling of a
	// configured name, whose letter case the config does not tell.
	Exact, AnyCase []string
	// Setting is the source's config key that adds keys ("" when none
	// does); Advice says where else the field may be read, if anywhere.
	Setting, Advice string
}

// Source is the webhook side of a CRM connector.
type Source interface {
	// Verify authenticates the delivery over its raw bytes, before parsing.
	// Errors wrap ErrUnauthorized (401), or ErrMalformed (400) for a body
	// whose credentials are bound to an account that cannot tell whose
	// the body is.
	Verify(w *Webhook) error
	// Parse turns a verified delivery into its deal events (one or a batch).
	// Errors wrap ErrMalformed.
	Parse(w *Webhook) ([]model.DealEvent, error)
}

// AccountLister is implemented by sources whose connection serves
// configured CRM accounts (HubSpot portals, Salesforce orgs, Pipedrive
// companies): their ids, unsorted.
type AccountLister interface {
	Accounts() []string
}

// ConfigWarner is implemented by sources that can tell of a valid config
// that is still unsafe or likely wrong (a signing secret shorter than its
// scheme asks for): `config check` prints the warnings and the processes
// log them at start.
type ConfigWarner interface {
	ConfigWarnings() []string
}

// InvoiceReferenceLookup is implemented by targets that can look for an
// invoice the ERP already has with the invoice's reference (billed to the
// same customer) before creating one, and take it as the deal's invoice (a
// replay): a re-run after the ERP has forgotten the idempotency key then
// makes no second invoice. That holds only while the reference is unique
// per deal: a second deal with the same reference would be given the
// first deal's invoice, and none of its own. LooksUpInvoicesByReference
// reports whether the target is configured to look, and names the target
// setting that turns the look-up off ("check_reference"), so a connection
// whose mapping's reference does not read deal.id can be warned about.
type InvoiceReferenceLookup interface {
	LooksUpInvoicesByReference() (on bool, setting string)
}

// SelfNumberedReference is implemented by targets whose ERP keeps the
// invoice's reference in the field it numbers its own invoices in
// (QuickBooks' DocNumber: 1001, 1002, … on from the last number used) and
// refuses a number another invoice has. A reference that is the deal's
// bare id, a number for most CRMs, can meet one of those numbers, and the
// deal's invoice is then refused. ReferenceNumberField names that field,
// so a connection whose mapping's reference is the bare deal id can be
// warned about.
type SelfNumberedReference interface {
	ReferenceNumberField() string
}

// NetOfTaxLines is implemented by sources whose line items are net of tax
// whatever the CRM's prices say (Pipedrive: a product priced inclusive of
// tax is read net of it), and GrossLineAmounts by targets that can be set
// to take line amounts as tax-inclusive (Xero's line_amount_types:
// Inclusive), naming that setting. Together they bill every taxed line
// short by its tax, which no check of the totals can see (the lines add
// up to the deal amount, lowered by the same tax): a connection that joins
// them is warned about.
type NetOfTaxLines interface {
	LinesNetOfTax() bool
}

// GrossLineAmounts: see NetOfTaxLines.
type GrossLineAmounts interface {
	LineAmountsIncludeTax() (on bool, setting string)
}

// WonStageReporter is implemented by sources that report every won deal
// with one stage value, whatever the CRM account calls its won stages
// (HubSpot `closedwon`, Salesforce `Closed Won`, Pipedrive `won`). A
// connection's trigger.won_stages must list it: otherwise no deal of the
// connection is ever invoiced, and every delivery is acknowledged.
type WonStageReporter interface {
	WonStage() string
}

// AccountKeyer is implemented by sources whose CRM writes an account id
// in more than one way (Salesforce org ids: 15 or 18 characters, any
// letter case): AccountKey returns the configured key of the account an
// operator typed, which is what workflow ids and account_targets use.
type AccountKeyer interface {
	AccountKey(id string) (string, bool)
}

// WonDealLister is implemented by sources that can list the deals of a
// CRM account that were won in a period (`dealsync deals sync`): the
// safety net for webhooks a CRM gave up delivering, and the first sync of
// a connection that goes live after deals were won.
type WonDealLister interface {
	// ListWonDeals calls fn for each deal of the account that is won now
	// and was won in [since, until), as the source can tell it (a won time,
	// or a last modification with a close date not before the period); an
	// error of fn stops the listing and is returned.
	ListWonDeals(ctx context.Context, account string, since, until time.Time, fn func(WonDeal) error) error
}

// WonDeal is a deal a WonDealLister found.
type WonDeal struct {
	ID string
	// Stage is the deal's stage as the CRM names it.
	Stage     string
	CloseDate model.Date
	// EventStage and Raw are the stage and the fields a webhook of the
	// deal carries (Deal.Stage, Deal.Raw), as far as the listing has them,
	// so that the connection's trigger judges a listed deal as it judges
	// its webhooks: HubSpot and Salesforce events report every won stage
	// as their won stage (closedwon, Closed Won) and keep the CRM's in Raw
	// (dealstage, StageName); Pipedrive's carry stage_id and pipeline_id.
	// An empty EventStage is Stage.
	EventStage string
	Raw        map[string]json.RawMessage
}

// EventResolver is implemented by sources whose parsed events need the
// CRM's API before the trigger can judge them: HubSpot sends a custom
// pipeline's stage as an id, and only its pipelines API says whether that
// stage is won. The intake calls Resolve after Parse and before the
// trigger; it may rewrite the events (their stage) in place. Errors wrap
// ErrCRMUnavailable when asking again later may succeed.
type EventResolver interface {
	Resolve(ctx context.Context, events []model.DealEvent) error
}

// Acknowledger is implemented by sources whose vendor expects a particular
// reply body (Salesforce wants a SOAP Ack, or a fault to retry). Sources
// without it get dealsync's JSON reply.
type Acknowledger interface {
	// Acknowledge writes the reply for a delivery whose events were all
	// durably recorded (or needed no run).
	Acknowledge(w http.ResponseWriter, status int, reply Reply)
	// Refuse writes the reply for a delivery that was not (or not wholly)
	// recorded, so that the sender retries or gives up as status says.
	Refuse(w http.ResponseWriter, status int, message string)
}

// Reply is the intake's answer to one delivery.
type Reply struct {
	Results []EventResult `json:"results"`
}

// EventResult says what happened to one event of a delivery.
type EventResult struct {
	EventID    string `json:"event_id"`
	DealID     string `json:"deal_id,omitempty"`
	WorkflowID string `json:"workflow_id,omitempty"`
	RunID      string `json:"run_id,omitempty"`
	Duplicate  bool   `json:"duplicate"`
	// Skipped gives the reason an event started no run (e.g. not closed-won).
	Skipped string `json:"skipped,omitempty"`
	// Reason says what a duplicate met when it is not the deal's
	// invoicing run: a win that reached the run recording the deal's
	// loss (RecordDealLoss), which invoices it only if it is the newer.
	Reason string `json:"reason,omitempty"`
}

// DealFetcher is implemented by sources whose events are thin: the full
// deal (company, line items) is read from the CRM's API.
type DealFetcher interface {
	FetchDeal(ctx context.Context, account, dealID string) (model.Deal, error)
}

// WebhookShaper is implemented by sources whose webhooks are thin:
// WebhookDeal is a deal read from the CRM (FetchDeal) as a webhook event
// of it carries it, so that a dry run judges the connection's trigger on
// what the intake would judge it on.
type WebhookShaper interface {
	WebhookDeal(d model.Deal) model.Deal
}

// WebhookRawKeyser is implemented by thin sources whose webhooks carry a
// fixed set of Deal.Raw keys (the event's own fields: HubSpot's
// propertyName, Pipedrive's stage_id): a trigger that reads another
// (a Pipedrive deal's custom_fields, a HubSpot property the fetch adds)
// reads "" on every webhook. config check and the start warn of it.
type WebhookRawKeyser interface {
	WebhookRawKeys() []string
}

// WriteBacker is implemented by sources that record the invoice on the deal.
type WriteBacker interface {
	WriteBack(ctx context.Context, account, dealID string, result InvoiceResult) error
}

// WriteBackSwitch is implemented by write-backers whose config may give
// them nothing to write (a CRM source without write-back fields): the
// connection of one that WritesBack not has no write-back, and its runs no
// write-back step, as a generic source without write_back.url.
type WriteBackSwitch interface {
	WritesBack() bool
}

// WriteBackDescriber is implemented by write-backers whose write-back is
// configured rather than the CRM's API (the generic source's signed POST
// to write_back.url): `config check` says where the invoices go.
type WriteBackDescriber interface {
	DescribeWriteBack() string
}

// Target is the ERP side: it creates customers and invoices exactly once.
// key is an idempotency key stable across retries of the same step.
type Target interface {
	FindOrCreateCustomer(ctx context.Context, c model.Customer, key string) (CustomerRef, error)
	CreateInvoice(ctx context.Context, inv model.Invoice, customer CustomerRef, key string) (InvoiceResult, error)
	// PlanInvoice returns the request CreateInvoice would send, with secrets
	// masked. It sends nothing (dry runs, `dealsync mapping test`).
	PlanInvoice(inv model.Invoice, customer CustomerRef, key string) (Request, error)
}

// CustomerRef is the ERP's customer for an invoice.
type CustomerRef struct {
	ID      string `json:"id"`
	Created bool   `json:"created"`
}

// InvoiceResult is the ERP's record of a created invoice.
type InvoiceResult struct {
	InvoiceID string `json:"invoice_id"`
	Number    string `json:"number,omitempty"`
	URL       string `json:"url,omitempty"`
	// Replayed is true when the ERP answered from an earlier identical
	// request (idempotency) instead of creating a new invoice.
	Replayed bool `json:"replayed"`
	// Warning is what the target noticed about the invoice it made that
	// someone should look at (the ERP's total differs from the invoice's:
	// it computed its own tax); "" for none.
	Warning string `json:"warning,omitempty"`
}

// Request describes an HTTP request a target would send.
type Request struct {
	Method string          `json:"method"`
	URL    string          `json:"url"`
	Header http.Header     `json:"headers"`
	Body   json.RawMessage `json:"body,omitempty"`
	// Note says how a run's request may differ from this one, where the
	// target decides it from what it reads of the ERP at run time ("" when
	// it does not).
	Note string `json:"note,omitempty"`
}

// Env is what the process gives every connector it builds.
type Env struct {
	HTTPClient *http.Client
	Logger     *slog.Logger
	// ConfigKey is the config key of the block the connector is built
	// from: "targets.<name>" for a target, "connections.<name>.source"
	// for a source. Advice names a setting by its full key under it
	// (Keys), the key an engineer edits; "" when the connector is built
	// outside a config (tests).
	ConfigKey string
	// KeyVar is the environment variable that can set a config key
	// (config.Config.KeyVar), which advice names beside the key (Keys):
	// "" for a key no variable can set; nil outside a config.
	KeyVar func(key string) string
}

// TargetKeys are the keys of the target's block (ConfigKey), naming
// each one's variable (KeyVar).
func (e Env) TargetKeys() Keys {
	k := TargetKeys(e.ConfigKey)
	k.KeyVar = e.KeyVar
	return k
}

// SourceKeys are the keys of the source's block (ConfigKey), naming
// each one's variable (KeyVar).
func (e Env) SourceKeys() Keys {
	k := SourceKeys(e.ConfigKey)
	k.KeyVar = e.KeyVar
	return k
}

// Keys names the settings of a connector's config block in advice, by
// their full config keys and the environment variables that can set
// them: "targets.qbo-us.realm_id (or DEALSYNC_TARGETS_QBO_US_REALM_ID)".
type Keys struct {
	// Block is the block's config key (Env.ConfigKey).
	Block string
	// Whose names a setting when Block is not known: "target" gives
	// "the target's realm_id".
	Whose string
	// Prefix is the path of a part of the block a setting is under
	// ("accounts.62515."): see Under.
	Prefix string
	// KeyVar is Env.KeyVar: the variable named beside a key, when there
	// is one (nil: none named).
	KeyVar func(key string) string
}

// IsZero says whether k names no block and no owner (a zero Keys).
func (k Keys) IsZero() bool { return k.Block == "" && k.Whose == "" && k.Prefix == "" }

// TargetKeys are the keys of a target's block (Env.ConfigKey); without
// one, a setting is named as the target's.
func TargetKeys(block string) Keys { return Keys{Block: block, Whose: "target"} }

// SourceKeys are the keys of a source's block (Env.ConfigKey); without
// one, a setting is named as the source's.
func SourceKeys(block string) Keys { return Keys{Block: block, Whose: "source"} }

// Key names setting ("realm_id", "accounts.62515.access_token") for
// advice: "targets.qbo-us.realm_id", with the variable that can set it
// when there is one (operators mostly set secrets so), "targets.qbo-us.realm_id
// (or DEALSYNC_TARGETS_QBO_US_REALM_ID)"; or "the target's realm_id" when
// the block is not known. A message names it outside parentheses (write
// "the consumer key in X", not "the consumer key (X)"), so that the
// variable's own do not nest in others.
func (k Keys) Key(setting string) string {
	setting = k.Prefix + setting
	switch {
	case k.Block != "":
		key := k.Block + "." + setting
		if k.KeyVar != nil {
			if v := k.KeyVar(key); v != "" {
				return key + " (or " + v + ")"
			}
		}
		return key
	case k.Whose != "":
		return "the " + k.Whose + "'s " + setting
	}
	return setting
}

// List names several settings: "targets.x.client_id and
// targets.x.client_secret", or "the target's client_id and client_secret"
// when the block is not known.
func (k Keys) List(settings ...string) string {
	names := make([]string, len(settings))
	for i, s := range settings {
		if k.Block != "" {
			names[i] = k.Key(s)
		} else {
			names[i] = k.Prefix + s
		}
	}
	list := names[0]
	if n := len(names); n > 1 {
		list = strings.Join(names[:n-1], ", ") + " and " + names[n-1]
	}
	if k.Block == "" && k.Whose != "" {
		return "the " + k.Whose + "'s " + list
	}
	return list
}

// Under are the keys of the part path ("accounts.62515") of the block.
func (k Keys) Under(path string) Keys {
	k.Prefix += path + "."
	return k
}

// DefaultTimeout bounds a connector's API call when the process gives no
// HTTP client.
const DefaultTimeout = 30 * time.Second

// Client is the process's HTTP client, or one with DefaultTimeout.
func (e Env) Client() *http.Client {
	if e.HTTPClient != nil {
		return e.HTTPClient
	}
	return &http.Client{Timeout: DefaultTimeout}
}

// Log is the process's logger, or slog's default.
func (e Env) Log() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

// MediaTyper is implemented by sources whose deliveries are not JSON
// (Salesforce sends SOAP as text/xml). Others accept application/json.
type MediaTyper interface {
	MediaTypes() []string
}

// CustomerKey is the idempotency key of a customer's creation: the run's
// key, "/" and 16 hex digits of a digest of the customer's fields. Every
// attempt of a run sends the same customer, so a retry after a lost answer
// is a replay. A later run of the deal (a new delivery after a failure,
// `runs retry`) whose company changed in the CRM sends another customer:
// under the same key an ERP that replays by key alone (QuickBooks'
// requestid) would answer the first run's customer, and the new company
// would be billed and linked to it; one that checks the body (the IETF
// draft, the sandbox) would refuse the run for good. The digest covers a
// fixed list of fields, so a field added to model.Customer later does not
// change the keys of runs in flight.
func CustomerKey(runKey string, c model.Customer) string {
	a := c.Address
	h := sha256.New()
	for _, f := range []string{"v1", c.ExternalID, c.Name, c.Email, c.TaxID,
		a.Line1, a.Line2, a.City, a.Region, a.PostalCode, a.Country, string(c.Currency)} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return runKey + "/" + hex.EncodeToString(h.Sum(nil)[:8])
}

// CustomerRunKey is the run's key a CustomerKey was made from (key itself
// when it is not one), for targets that derive a lasting id from it.
func CustomerRunKey(key string) string {
	i := strings.LastIndexByte(key, '/')
	if i < 0 || len(key)-i-1 != 16 {
		return key
	}
	if _, err := hex.DecodeString(key[i+1:]); err != nil {
		return key
	}
	return key[:i]
}

// NotUTF8 says why data that is not UTF-8 (what: "the body", "event
// [2]") is refused, naming the first byte that is not, at its offset in
// data; "" for UTF-8. JSON is UTF-8 (RFC 8259), and a
// decoder reads such bytes as U+FFFD: the ids "Zo\xeb-7" and "Zo\xec-7"
// of a body in ISO-8859-1 would both be "Zo\ufffd-7", one deal (the
// second answered as a duplicate, never invoiced) or one customer (an
// invoice billed to another company).
// A body compressed with gzip, which is never UTF-8, says so (Gzipped).
func NotUTF8(what string, data []byte) string {
	return NotUTF8Because(what, data, "JSON is UTF-8 (RFC 8259): send (or save) the text as UTF-8, not in another encoding such as ISO-8859-1")
}

// NotUTF8Because is NotUTF8 of a format whose rule, and what to do, is
// why (for XML, what the sender is known to send).
func NotUTF8Because(what string, data []byte, why string) string {
	if utf8.Valid(data) {
		return ""
	}
	if msg := Gzipped(what, data); msg != "" {
		return msg
	}
	off := 0
	for off < len(data) {
		r, size := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		off += size
	}
	line, col := jsonpos.Position(data, int64(off)+1)
	return fmt.Sprintf("%s is not UTF-8: byte 0x%02X at byte offset %d (line %d, column %d) is not; %s",
		what, data[off], off, line, col, why)
}

// Gzipped says that data (what: "the body") starts as a gzip stream does
// (the bytes 1f 8b), "" when it does not: a sender that compressed its
// body without saying so in a Content-Encoding (which the intake refuses,
// the signature being over the bytes as sent) is told so, not that its
// text is in another encoding.
func Gzipped(what string, data []byte) string {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return ""
	}
	return what + " looks gzip-compressed (it starts with the bytes 1f 8b) and came without a Content-Encoding: " +
		"send it uncompressed (a Content-Encoding is refused: the signature is over the bytes as sent)"
}

// QuoteShort quotes an untrusted value for an error message, cut to 40
// bytes.
func QuoteShort(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40]) + "..."
	}
	return strconv.Quote(s)
}

// IsIntegerID reports whether s is the id of a HubSpot or Pipedrive
// object, a 64-bit integer: 1 to 19 ASCII digits without a leading zero
// ("0801" would be another workflow ID, and another run, for deal 801).
// A longer one, which no such object has, would make a workflow ID
// Temporal refuses, and a delivery answered 500 for ever.
func IsIntegerID(s string) bool {
	return IsDigits(s) && len(s) <= 19 && (s[0] != '0' || s == "0")
}

// IsDigits reports whether s is a non-empty run of ASCII digits: the form
// of a HubSpot or Pipedrive object id, and of a QuickBooks or NetSuite
// record's internal id.
func IsDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
