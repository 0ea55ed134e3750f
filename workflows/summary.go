package workflows

import (
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
)

// What a run, its steps and its waits say in the Temporal Web UI and CLI
// (user metadata): a one-line summary each, in Temporal markdown. The
// texts that come from a CRM or a config (deal and company names, ids,
// stages, an ERP target's description) are written plain (see plain): a
// line break or format character as a space, the characters markdown
// would read as formatting or a link escaped with a backslash, and each
// cut to a bound with "…", so that a deal name of 10 KB does not bloat
// every start event and marker of its run.
// A whole text is then cut further, names first, to a size Temporal
// takes (summaryLimit, detailsLimit).
//
// Only the user metadata of commands carries them, which Temporal does not
// compare when it replays a history: runs begun before the summaries (or
// with other wordings) replay unchanged, with no workflow.GetVersion.

// Bounds, in characters, of the texts a summary takes from a deal.
const (
	nameBound     = 48  // a deal, company or customer name
	idBound       = 40  // a deal id, an invoice's number or reference, a stage, a connection
	currencyBound = 8   // a currency as the deal has it (unvalidated)
	targetBound   = 160 // an ERP target's description
	reasonBound   = 160 // an error's message in the current details
)

// Bounds of a text's encoded size: the length of the payload's data the
// SDK's default data converter makes of it (JSON, which writes < > & as
// \u003c, a quote or backslash with a backslash). Temporal refuses user
// metadata whose summary's payload is larger than the namespace's
// limit.userMetadataSummarySize, 400 bytes by default (the data and the
// payload's encoding), its details' larger than
// limit.userMetadataDetailsSize, 20,000 bytes: server 1.32 checks them
// for standalone activities and Nexus operations only, a later one may
// for a workflow's start, step or timer too, and refuse them.
const (
	summaryLimit = 300  // a run's, a step's or a wait's summary
	detailsLimit = 4000 // a run's details, its current details
)

// A text is what a run, a step or a wait says: fixed wording, and parts
// from a CRM or a config, written as plain writes them, that fit cuts
// further to keep the whole within a size.
type text struct {
	parts []textPart
}

// A textPart is a part of a text: fixed wording (bound 0), else a text
// from outside with its bound in characters and its cut, the round of
// fit that cuts it further (cutName, then cutID).
type textPart struct {
	s     string
	bound int
	cut   int
	out   string // as the text writes it
}

// The kinds of text fit cuts: names, then the other texts.
const (
	cutName = 1 + iota
	cutID
)

// fitRounds are the rounds in which fit cuts a text too large: its names
// to nameFloor bytes (a few characters, however escaped), then its other
// parts, then its names further; each part to "…" at least.
var fitRounds = [...]struct{ cut, floor int }{{cutName, nameFloor}, {cutID, 0}, {cutName, 0}}

// nameFloor is the size fit leaves a name before it cuts the other parts.
const nameFloor = 64

// add adds part p.
func (t *text) add(p textPart) {
	if t.parts == nil {
		t.parts = make([]textPart, 0, 12) // most texts' parts
	}
	t.parts = append(t.parts, p)
}

// fixed adds wording of dealsync's, written as is.
func (t *text) fixed(s string) *text {
	t.add(textPart{s: s})
	return t
}

// name adds a name from outside (a deal's, a company's, a customer's).
func (t *text) name(s string) *text {
	t.add(textPart{s: s, bound: nameBound, cut: cutName})
	return t
}

// id adds another text from outside (an id, a stage, a reason), cut to
// bound characters.
func (t *text) id(s string, bound int) *text {
	t.add(textPart{s: s, bound: bound, cut: cutID})
	return t
}

// named adds noun and id, "deal D-7", or "the deal" when id is blank.
func (t *text) named(noun, id string) *text {
	if blankText(id) {
		return t.fixed("the " + noun)
	}
	return t.fixed(noun+" ").id(id, idBound)
}

// blankText says whether plain writes nothing of s.
func blankText(s string) bool {
	return strings.TrimFunc(s, blank) == ""
}

// fit writes t within limit bytes encoded (the payload's data): its parts
// from outside as plain writes them and, when the whole is larger, cut
// further in fitRounds, those of a round to an equal share of what is
// left (a shorter one whole).
func (t *text) fit(limit int) string {
	// Most texts fit: written at once.
	var b strings.Builder
	b.Grow(160)
	for _, p := range t.parts {
		if p.bound == 0 {
			b.WriteString(p.s)
		} else {
			plain(&b, p.s, p.bound)
		}
	}
	if whole := b.String(); jsonLen(whole)+2 <= limit {
		return whole
	}
	size := 2 // the JSON string's quotes
	for i := range t.parts {
		p := &t.parts[i]
		if p.bound == 0 {
			p.out = p.s
		} else {
			p.out = plainText(p.s, p.bound)
		}
		size += jsonLen(p.out)
	}
	for _, round := range fitRounds {
		if size <= limit {
			break
		}
		var sizes []int
		total := 0
		for _, p := range t.parts {
			if p.cut == round.cut {
				n := jsonLen(p.out)
				sizes, total = append(sizes, n), total+n
			}
		}
		if len(sizes) == 0 {
			continue
		}
		share := max(fairShare(sizes, total-(size-limit)), round.floor, len("…"))
		for i := range t.parts {
			if p := &t.parts[i]; p.cut == round.cut && jsonLen(p.out) > share {
				size -= jsonLen(p.out)
				p.out = plainWithin(p.s, p.bound, share)
				size += jsonLen(p.out)
			}
		}
	}
	b = strings.Builder{}
	b.Grow(size)
	for _, p := range t.parts {
		b.WriteString(p.out)
	}
	return b.String()
}

// fairShare is the largest share such that sizes, each cut to it (a
// smaller one left whole), add up to at most total (0 when total < 0).
func fairShare(sizes []int, total int) int {
	if total <= 0 {
		return 0
	}
	slices.Sort(sizes)
	for i, n := range sizes {
		if left := len(sizes) - i; n*left > total {
			return total / left
		}
		total -= n
	}
	return sizes[len(sizes)-1]
}

// jsonLen is the length of s as a JSON string (encoding/json's, which
// the SDK's JSON payload converter uses), its quotes left out.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += len(`\ufffd`)
		} else {
			n += jsonRuneLen(r)
		}
		i += size
	}
	return n
}

// jsonRuneLen is the length of r in a JSON string.
func jsonRuneLen(r rune) int {
	switch {
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t' || r == '\b' || r == '\f':
		return 2
	case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
		return len(`\u0000`)
	}
	return utf8.RuneLen(r)
}

// StartSummary is the StaticSummary of a run of workflow type runType
// (InvoiceDealName, RecordDealLossName) that dealsync starts with in:
//
//	Deal 123 (Acme Ltd) · 1,200.00 EUR · won → invoice via connection "demo"
//	Deal 123 · won → invoice via connection "hubspot" (deal read from the CRM)
//	Deal 123 (Acme Ltd) · 1,200.00 EUR · write invoice INV-9 back to the CRM via connection "demo"
//	Deal 123 (Acme Ltd) · 1,200.00 EUR · lost (stage closed_lost) → record the loss via connection "demo"
//
// The name in parentheses is the deal's company, else the deal's own name;
// the amount is left out when the deal has none (a thin event's).
func StartSummary(runType string, in InvoiceDealInput) string {
	d := in.Event.Deal
	var t text
	t.fixed("Deal")
	if !blankText(d.ID) {
		t.fixed(" ").id(d.ID, idBound)
	}
	if who := dealParty(d); !blankText(who) {
		t.fixed(" (").name(who).fixed(")")
	}
	if d.Amount.Valid && amountShown(d.Amount.Decimal) {
		c := model.Currency(strings.TrimSpace(d.Currency))
		t.fixed(" · " + amount(d.Amount.Decimal, c))
		if c != "" {
			t.fixed(" ").id(string(c), currencyBound)
		}
	}
	switch {
	case runType == RecordDealLossName:
		t.fixed(" · lost")
		if !blankText(d.Stage) {
			t.fixed(" (stage ").id(d.Stage, idBound).fixed(")")
		}
		t.fixed(" → record the loss")
	case in.Invoiced != nil:
		t.fixed(" · write ").named("invoice", invoiceName(*in.Invoiced)).fixed(" back to the CRM")
	default:
		t.fixed(" · won → invoice")
	}
	if !blankText(in.Connection) {
		t.fixed(` via connection "`).id(in.Connection, idBound).fixed(`"`)
	}
	if in.Fetch && in.Invoiced == nil && runType != RecordDealLossName {
		t.fixed(" (deal read from the CRM)")
	}
	return t.fit(summaryLimit)
}

// StartDetails is the StaticDetails of a run dealsync starts with in: a
// markdown list of where its calls go and what started it (origin: "" for
// a webhook, else the command, "dealsync runs retry"). mapping and hash
// name the mapping the run maps with or, for a run that only writes an
// invoice back (in.Invoiced), the one its invoice was made with ("" when
// unknown: no line). The ERP target is the one the run is pinned to; a
// write-back run, which never calls the ERP, names none: its input pins
// the target of its start, not the one its invoice was made on.
//
//   - connection demo, CRM account 62515
//   - mapping default (hash 35f00bb5fa22)
//   - ERP target "books" (xero, tenant_id …)
//   - started by a webhook
func StartDetails(in InvoiceDealInput, origin, mapping, hash string) string {
	var t text
	t.fixed("- connection ").id(in.Connection, idBound)
	if !blankText(in.Event.Account) {
		t.fixed(", CRM account ").id(in.Event.Account, idBound)
	}
	if !blankText(mapping) {
		t.fixed("\n- ")
		if in.Invoiced != nil {
			t.fixed("invoice made with ")
		}
		t.fixed("mapping ").id(mapping, idBound)
		if !blankText(hash) {
			t.fixed(" (hash ").id(hash, idBound).fixed(")")
		}
	}
	if tg := in.ERPTarget; tg != nil && !blankText(tg.Description) && in.Invoiced == nil {
		t.fixed("\n- ERP ").id(tg.Description, targetBound)
	}
	t.fixed("\n- started by ")
	if origin == "" {
		t.fixed("a webhook")
	} else {
		t.id(origin, idBound)
	}
	return t.fit(detailsLimit)
}

// dealParty is who a deal is with, as a summary names it: its company,
// else its own name ("" when it has neither).
func dealParty(d model.Deal) string {
	if !blankText(d.Company.Name) {
		return d.Company.Name
	}
	if !blankText(d.Name) {
		return d.Name
	}
	return ""
}

// invoiceName is how a summary names an invoice the ERP made: its number,
// else its id.
func invoiceName(r connectors.InvoiceResult) string {
	if r.Number != "" {
		return r.Number
	}
	return r.InvoiceID
}

// amount is d with currency c's minor units (more when it has more:
// rounding would show another amount), its thousands grouped by commas:
// "1,200.00" (EUR), "1500" (JPY), "-0.005" (KWD).
func amount(d decimal.Decimal, c model.Currency) string {
	text := c.Format(d)
	if !d.Equal(d.Round(c.MinorUnits())) {
		text = model.ExactString(d)
	}
	var b strings.Builder
	b.Grow(len(text) + len(text)/3)
	if strings.HasPrefix(text, "-") {
		b.WriteByte('-')
		text = text[1:]
	}
	whole, frac, hasFrac := strings.Cut(text, ".")
	for i := 0; i < len(whole); i++ {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(whole[i])
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// amountShown says whether a summary shows amount d: not a number too long
// to show (more than 24 digits before the point or 12 after), which would
// cost its run's start a long string, and its summary a line.
func amountShown(d decimal.Decimal) bool {
	e := d.Exponent()
	return e >= -12 && int(e)+d.NumDigits() <= 24
}

// markdownSpecial are the characters Temporal markdown (CommonMark with
// GitHub's extensions) may read as formatting within a line: emphasis,
// code, links and images, HTML and autolinks, strikethrough, tables,
// entities, and the backslash that escapes them.
const markdownSpecial = "\\`*_[]<>~|&"

// plain writes s, trimmed, as plain text within a markdown line, cut
// after max characters with "…":
//   - a control character (a line break; "\r\n" is one), a format
//     character (\p{Cf}: a bidi override such as U+202E that would show
//     the text reversed, a zero-width space) and a line or paragraph
//     separator as a space;
//   - markdownSpecial escaped with a backslash (but an underscore within a
//     word, closed_won, and an & that starts no entity, "Smith & Sons",
//     which markdown leaves alone);
//   - what GitHub's markdown would make a link of although no bracket
//     says so (its autolinks extension) broken by a backslash that
//     renders as nothing: the colon of "://" (https\://evil.example), the
//     dot of a "www." that starts a word (www\.evil.example), an @ before
//     a letter or digit (an e-mail address, mailto: and xmpp: links).
func plain(b *strings.Builder, s string, max int) {
	plainTo(b, s, max, -1)
}

// plainTo writes s as plain does, cut further when what it writes would
// be larger than budget bytes encoded (jsonLen; no such cut when budget
// < 0): then as many characters as fit with the "…" that ends them, at
// least the "…".
func plainTo(b *strings.Builder, s string, max, budget int) {
	s = strings.TrimFunc(s, blank)
	cut := budget >= 0 && plainSize(s, max) > budget
	n, size := 0, len("…")
	for r, esc := range plainRunes(s) {
		if n == max {
			b.WriteString("…")
			return
		}
		if cut {
			if size += escapedLen(r, esc); size > budget {
				b.WriteString("…")
				return
			}
		}
		n++
		if esc {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
}

// plainSize is the encoded size (jsonLen) of what plain writes of s,
// trimmed.
func plainSize(s string, max int) int {
	n, size := 0, 0
	for r, esc := range plainRunes(s) {
		if n == max {
			return size + len("…")
		}
		n++
		size += escapedLen(r, esc)
	}
	return size
}

// escapedLen is the encoded size of r, escaped with a backslash (esc) or
// not.
func escapedLen(r rune, esc bool) int {
	if esc {
		return len(`\\`) + jsonRuneLen(r)
	}
	return jsonRuneLen(r)
}

// plainRunes yields the characters plain writes for those of s (trimmed
// already), each with whether a backslash escapes it.
func plainRunes(s string) iter.Seq2[rune, bool] {
	return func(yield func(rune, bool) bool) {
		for i, r := range s {
			var ok bool
			switch {
			case r == '\n' && i > 0 && s[i-1] == '\r':
				continue // "\r\n": one line break, one space
			case blank(r):
				ok = yield(' ', false)
			default:
				ok = yield(r, r < utf8.RuneSelf && escaped(s, i))
			}
			if !ok {
				return
			}
		}
	}
}

// blank says whether plain writes r as a space (or trims it): a space, a
// control or format character, a line or paragraph separator.
func blank(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// escaped says whether plain escapes the ASCII character at byte i of s.
func escaped(s string, i int) bool {
	switch c := s[i]; c {
	case '_':
		return !(wordAt(s, i-1) && wordAt(s, i+1))
	case '&':
		return wordAt(s, i+1) || i+1 < len(s) && s[i+1] == '#'
	case ':':
		return strings.HasPrefix(s[i+1:], "//")
	case '.':
		return i >= 3 && strings.EqualFold(s[i-3:i], "www") && !wordAt(s, i-4)
	case '@':
		return wordAt(s, i+1)
	default:
		return strings.IndexByte(markdownSpecial, c) >= 0
	}
}

// wordAt says whether s has an ASCII letter or digit at byte i.
func wordAt(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return false
	}
	c := s[i]
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// plainText is s as plain writes it.
func plainText(s string, max int) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	plain(&b, s, max)
	return b.String()
}

// plainWithin is s as plainTo writes it within budget bytes.
func plainWithin(s string, max, budget int) string {
	var b strings.Builder
	b.Grow(budget)
	plainTo(&b, s, max, budget)
	return b.String()
}

// targetName is the name of the ERP target a run was started for, from
// its description (`target "books" (xero, …)`): "books", or "" when the
// run has none pinned (started before targets were) or its description
// does not name one.
func targetName(t *connectors.TargetIdentity) string {
	if t != nil {
		if rest, ok := strings.CutPrefix(t.Description, "target "); ok {
			if q, err := strconv.QuotedPrefix(rest); err == nil {
				if name, err := strconv.Unquote(q); err == nil {
					return name
				}
			}
		}
	}
	return ""
}

// stepSummaries are the summaries of a run's steps and waits, made from
// its input and its earlier steps' results only (a replay makes the same).
type stepSummaries struct {
	deal   string // the deal's id
	target string // the name of the ERP target the ERP steps go to (targetName)
}

func newStepSummaries(in InvoiceDealInput) stepSummaries {
	return stepSummaries{deal: in.Event.Deal.ID, target: targetName(in.ERPTarget)}
}

// in adds where the ERP steps go: ` in ERP target "books"`, or " in the
// ERP" when the run's target has no name.
func (s stepSummaries) in(t *text) *text {
	if s.target == "" {
		return t.fixed(" in the ERP")
	}
	return t.fixed(` in ERP target "`).id(s.target, idBound).fixed(`"`)
}

func (s stepSummaries) fetch(again bool) string {
	var t text
	t.fixed("fetch ").named("deal", s.deal).fixed(" from the CRM")
	if again {
		t.fixed(" again")
	}
	return t.fit(summaryLimit)
}

func (s stepSummaries) mapDeal(mapping string) string {
	var t text
	t.fixed("map ").named("deal", s.deal)
	if blankText(mapping) {
		t.fixed(" with the connection's mapping")
	} else {
		t.fixed(` with mapping "`).id(mapping, idBound).fixed(`"`)
	}
	return t.fit(summaryLimit)
}

func (s stepSummaries) validate(reference string) string {
	var t text
	return t.fixed("validate ").named("invoice", reference).fixed(" against the deal's amount").fit(summaryLimit)
}

func (s stepSummaries) customer(name string) string {
	var t text
	return s.in(s.customerWhat(t.fixed("ensure "), name)).fit(summaryLimit)
}

// invoice is the invoice step's summary; attempt, when set, says which of
// its attempts one call makes: " (attempt 2)", " (attempts 3+)".
func (s stepSummaries) invoice(reference, attempt string) string {
	var t text
	t.fixed("create ").named("invoice", reference)
	return s.in(&t).fixed(attempt).fit(summaryLimit)
}

func (s stepSummaries) writeBack(r connectors.InvoiceResult) string {
	var t text
	return t.fixed("write ").named("invoice", invoiceName(r)).fixed(" back to ").named("deal", s.deal).fixed(" in the CRM").fit(summaryLimit)
}

// Summaries of the steps and waits that take nothing from the run.
const (
	previousRunSummary = "read how the deal's previous run ended"
	earlierRunsSummary = "read the deal's earlier runs (a loss they recorded)"
	targetNameSummary  = "read the ERP target's name for the failure message"
	checkpointSummary  = "checkpoint: end the workflow task that sent the invoice step"
)

// settle is the timer's summary of a settle time that ends at until.
func (s stepSummaries) settle(now, until time.Time) string {
	var t text
	return t.fixed("settle: wait for more events of ").named("deal", s.deal).fixed(" until " + clock(now, until)).fit(summaryLimit)
}

// settleLoss is settle's for a RecordDealLoss run.
func (s stepSummaries) settleLoss(now, until time.Time) string {
	var t text
	return t.fixed("settle: wait for more events of ").named("lost deal", s.deal).fixed(" until " + clock(now, until)).fit(summaryLimit)
}

// linger is the timer's summary of an invoiced run's linger.
func (s stepSummaries) linger(now, until time.Time) string {
	var t text
	return t.fixed("linger: record later changes of ").named("deal", s.deal).fixed(" until " + clock(now, until)).fit(summaryLimit)
}

// backOff is the timer's summary of the wait before attempt n of the
// invoice step (made an attempt at a time).
func (s stepSummaries) backOff(reference string, n int, now, until time.Time) string {
	var t text
	return backOffOf(t.named("invoice", reference), n, now, until)
}

// retrying is the current details of a run that waits until until to
// make attempt n of the invoice step, after an attempt failed with reason.
func (s stepSummaries) retrying(reference string, n int, now, until time.Time, reason string) string {
	var t text
	return retryingOf(t.named("invoice", reference), n, now, until, reason)
}

// customerWhat is what the customer step ensures, as its summary names
// it: customer "Acme", or the customer of deal D-7 when it has no name.
func (s stepSummaries) customerWhat(t *text, name string) *text {
	if blankText(name) {
		return t.fixed("the customer of ").named("deal", s.deal)
	}
	return t.fixed(`customer "`).name(name).fixed(`"`)
}

// customerBackOff is backOff's for the customer step.
func (s stepSummaries) customerBackOff(name string, n int, now, until time.Time) string {
	var t text
	return backOffOf(s.customerWhat(&t, name), n, now, until)
}

// customerRetrying is retrying's for the customer step.
func (s stepSummaries) customerRetrying(name string, n int, now, until time.Time, reason string) string {
	var t text
	return retryingOf(s.customerWhat(&t, name), n, now, until, reason)
}

// fetchWhat is what the fetch step reads: fetch of deal D-7 from the
// CRM.
func (s stepSummaries) fetchWhat(t *text) *text {
	return t.fixed("fetch of ").named("deal", s.deal).fixed(" from the CRM")
}

// fetchBackOff is backOff's for the fetch step.
func (s stepSummaries) fetchBackOff(n int, now, until time.Time) string {
	var t text
	return backOffOf(s.fetchWhat(&t), n, now, until)
}

// fetchRetrying is retrying's for the fetch step.
func (s stepSummaries) fetchRetrying(n int, now, until time.Time, reason string) string {
	var t text
	return retryingOf(s.fetchWhat(&t), n, now, until, reason)
}

// writeBackWhat is what the write-back step makes: write-back of
// invoice INV-9 to deal D-7.
func (s stepSummaries) writeBackWhat(t *text, r connectors.InvoiceResult) *text {
	return t.fixed("write-back of ").named("invoice", invoiceName(r)).fixed(" to ").named("deal", s.deal)
}

// writeBackBackOff is backOff's for the write-back step.
func (s stepSummaries) writeBackBackOff(r connectors.InvoiceResult, n int, now, until time.Time) string {
	var t text
	return backOffOf(s.writeBackWhat(&t, r), n, now, until)
}

// writeBackRetrying is retrying's for the write-back step.
func (s stepSummaries) writeBackRetrying(r connectors.InvoiceResult, n int, now, until time.Time, reason string) string {
	var t text
	return retryingOf(s.writeBackWhat(&t, r), n, now, until, reason)
}

// backOffOf is the timer's summary of the wait before attempt n of a step
// that makes what: "back-off: retry <what> (attempt n) at <until>".
func backOffOf(what *text, n int, now, until time.Time) string {
	var t text
	t.fixed("back-off: retry ")
	t.parts = append(t.parts, what.parts...)
	return t.fixed(" (attempt " + strconv.Itoa(n) + ") at " + clock(now, until)).fit(summaryLimit)
}

// retryingOf is the current details of a run that waits until until to
// make attempt n of a step that makes what, after an attempt failed with
// reason: "retrying <what> (attempt n at <until>): <reason>".
func retryingOf(what *text, n int, now, until time.Time, reason string) string {
	var t text
	t.fixed("retrying ")
	t.parts = append(t.parts, what.parts...)
	t.fixed(" (attempt " + strconv.Itoa(n) + " at " + clock(now, until) + ")")
	if !blankText(reason) {
		t.fixed(": ").id(reason, reasonBound)
	}
	return t.fit(detailsLimit)
}

// clock writes t in UTC, its time of day ("14:05:07 UTC"), with its date
// when it is not now's day ("2026-11-21 14:05:07 UTC").
func clock(now, t time.Time) string {
	now, t = now.UTC(), t.UTC()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04:05 UTC")
	}
	return t.Format("2006-01-02 15:04:05 UTC")
}
