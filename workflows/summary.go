package workflows

import (
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
// stages, an ERP target's description) are written plain: a line break
// as a space, the characters markdown would read as formatting escaped
// with a backslash, and each cut to a bound with "…", so that a deal
// name of 10 KB does not bloat every start event and marker of its run.
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
	var b strings.Builder
	b.Grow(112)
	b.WriteString("Deal ")
	plain(&b, d.ID, idBound)
	if who := dealParty(d); who != "" {
		b.WriteString(" (")
		plain(&b, who, nameBound)
		b.WriteByte(')')
	}
	if d.Amount.Valid && amountShown(d.Amount.Decimal) {
		b.WriteString(" · ")
		amount(&b, d.Amount.Decimal, d.Currency)
	}
	switch {
	case runType == RecordDealLossName:
		b.WriteString(" · lost")
		if stage := strings.TrimSpace(d.Stage); stage != "" {
			b.WriteString(" (stage ")
			plain(&b, stage, idBound)
			b.WriteByte(')')
		}
		b.WriteString(" → record the loss")
	case in.Invoiced != nil:
		b.WriteString(" · write invoice ")
		plain(&b, invoiceName(*in.Invoiced), idBound)
		b.WriteString(" back to the CRM")
	default:
		b.WriteString(" · won → invoice")
	}
	b.WriteString(" via connection \"")
	plain(&b, in.Connection, idBound)
	b.WriteByte('"')
	if in.Fetch && in.Invoiced == nil && runType != RecordDealLossName {
		b.WriteString(" (deal read from the CRM)")
	}
	return b.String()
}

// StartDetails is the StaticDetails of a run dealsync starts with in: a
// markdown list of where its calls go and what started it (origin: "" for
// a webhook, else the command, "dealsync runs retry"). mapping and hash
// name the mapping the run maps with or, for a run that only writes an
// invoice back (in.Invoiced), the one its invoice was made with ("" when
// unknown: no line).
//
//   - connection demo, CRM account 62515
//   - mapping default (hash 35f00bb5fa22)
//   - ERP target "books" (xero, tenant_id …)
//   - started by a webhook
func StartDetails(in InvoiceDealInput, origin, mapping, hash string) string {
	var b strings.Builder
	b.Grow(160)
	b.WriteString("- connection ")
	plain(&b, in.Connection, idBound)
	if acct := strings.TrimSpace(in.Event.Account); acct != "" {
		b.WriteString(", CRM account ")
		plain(&b, acct, idBound)
	}
	if mapping != "" {
		b.WriteString("\n- ")
		if in.Invoiced != nil {
			b.WriteString("invoice made with ")
		}
		b.WriteString("mapping ")
		plain(&b, mapping, idBound)
		if hash != "" {
			b.WriteString(" (hash ")
			plain(&b, hash, idBound)
			b.WriteByte(')')
		}
	}
	if t := in.ERPTarget; t != nil && t.Description != "" {
		b.WriteString("\n- ERP ")
		plain(&b, t.Description, targetBound)
	}
	b.WriteString("\n- started by ")
	if origin == "" {
		b.WriteString("a webhook")
	} else {
		plain(&b, origin, idBound)
	}
	return b.String()
}

// dealParty is who a deal is with, as a summary names it: its company,
// else its own name ("" when it has neither).
func dealParty(d model.Deal) string {
	if name := strings.TrimSpace(d.Company.Name); name != "" {
		return name
	}
	return strings.TrimSpace(d.Name)
}

// invoiceName is how a summary names an invoice the ERP made: its number,
// else its id.
func invoiceName(r connectors.InvoiceResult) string {
	if r.Number != "" {
		return r.Number
	}
	return r.InvoiceID
}

// amount writes d with the currency's minor units (more when it has more:
// rounding would show another amount), its thousands grouped by commas,
// and the currency as the deal has it: "1,200.00 EUR", "1500 JPY",
// "-0.005 KWD".
func amount(b *strings.Builder, d decimal.Decimal, currency string) {
	c := model.Currency(strings.TrimSpace(currency))
	text := c.Format(d)
	if !d.Equal(d.Round(c.MinorUnits())) {
		text = model.ExactString(d)
	}
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
	if c != "" {
		b.WriteByte(' ')
		plain(b, string(c), currencyBound)
	}
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
	s = strings.TrimFunc(s, blank)
	n := 0
	for i, r := range s {
		if r == '\n' && i > 0 && s[i-1] == '\r' {
			continue // "\r\n": one line break, one space
		}
		if n == max {
			b.WriteString("…")
			return
		}
		n++
		switch {
		case blank(r):
			b.WriteByte(' ')
		case r < utf8.RuneSelf && escaped(s, i):
			b.WriteByte('\\')
			b.WriteByte(byte(r))
		default:
			b.WriteRune(r)
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

// quoted is s as plain text in double quotes: `"Acme Ltd"`.
func quoted(s string, max int) string {
	var b strings.Builder
	b.Grow(len(s) + 4)
	b.WriteByte('"')
	plain(&b, s, max)
	b.WriteByte('"')
	return b.String()
}

// plainText is s as plain writes it.
func plainText(s string, max int) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	plain(&b, s, max)
	return b.String()
}

// targetName is the name of the ERP target a run was started for, from
// its description (`target "books" (xero, …)`): `ERP target "books"`, or
// "the ERP" when the run has none pinned (started before targets were) or
// its description does not name one.
func targetName(t *connectors.TargetIdentity) string {
	if t != nil {
		if rest, ok := strings.CutPrefix(t.Description, "target "); ok {
			if q, err := strconv.QuotedPrefix(rest); err == nil {
				if name, err := strconv.Unquote(q); err == nil && name != "" {
					return "ERP target " + quoted(name, idBound)
				}
			}
		}
	}
	return "the ERP"
}

// stepSummaries are the summaries of a run's steps and waits, made from
// its input and its earlier steps' results only (a replay makes the same).
type stepSummaries struct {
	deal   string // the deal's id, as plain writes it
	target string // where the ERP steps go (targetName)
}

func newStepSummaries(in InvoiceDealInput) stepSummaries {
	return stepSummaries{deal: plainText(in.Event.Deal.ID, idBound), target: targetName(in.ERPTarget)}
}

func (s stepSummaries) fetch(again bool) string {
	if again {
		return "fetch deal " + s.deal + " from the CRM again"
	}
	return "fetch deal " + s.deal + " from the CRM"
}

func (s stepSummaries) mapDeal(mapping string) string {
	if mapping == "" {
		return "map deal " + s.deal + " with the connection's mapping"
	}
	return "map deal " + s.deal + " with mapping " + quoted(mapping, idBound)
}

func (s stepSummaries) validate(reference string) string {
	return "validate invoice " + plainText(reference, idBound) + " against the deal's amount"
}

func (s stepSummaries) customer(name string) string {
	if strings.TrimSpace(name) == "" {
		return "ensure the customer of deal " + s.deal + " in " + s.target
	}
	return "ensure customer " + quoted(name, nameBound) + " in " + s.target
}

// invoice is the invoice step's summary; attempt, when set, says which of
// its attempts one call makes: " (attempt 2)", " (attempts 3+)".
func (s stepSummaries) invoice(reference, attempt string) string {
	return "create invoice " + plainText(reference, idBound) + " in " + s.target + attempt
}

func (s stepSummaries) writeBack(r connectors.InvoiceResult) string {
	return "write invoice " + plainText(invoiceName(r), idBound) + " back to deal " + s.deal + " in the CRM"
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
	return "settle: wait for more events of deal " + s.deal + " until " + clock(now, until)
}

// settleLoss is settle's for a RecordDealLoss run.
func (s stepSummaries) settleLoss(now, until time.Time) string {
	return "settle: wait for more events of lost deal " + s.deal + " until " + clock(now, until)
}

// linger is the timer's summary of an invoiced run's linger.
func (s stepSummaries) linger(now, until time.Time) string {
	return "linger: record later changes of deal " + s.deal + " until " + clock(now, until)
}

// backOff is the timer's summary of the wait before attempt n of the
// invoice step (made an attempt at a time).
func (s stepSummaries) backOff(reference string, n int, now, until time.Time) string {
	return "back-off: retry invoice " + plainText(reference, idBound) + " (attempt " + strconv.Itoa(n) + ") at " + clock(now, until)
}

// retrying is the current details of a run that waits until until to
// make attempt n of the invoice step, after an attempt failed with reason.
func (s stepSummaries) retrying(reference string, n int, now, until time.Time, reason string) string {
	return "retrying invoice " + plainText(reference, idBound) + " (attempt " + strconv.Itoa(n) + " at " + clock(now, until) + "): " +
		plainText(reason, reasonBound)
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
