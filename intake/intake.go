// Package intake is dealsync's HTTP front door: it receives CRM webhooks,
// checks them (size, media type, signature, shape), decides which events
// trigger a run and starts one Temporal workflow per triggering event,
// answering 2xx only once Temporal has durably recorded every start.
// It keeps no state, so any number of replicas can run behind a balancer.
package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/internal/outagelog"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/metrics"
	"github.com/dealsync/dealsync/model"
	"github.com/dealsync/dealsync/workflows"
	"golang.org/x/sync/semaphore"
)

// Connections finds a connection by name (a *connections.Set, or a live,
// reloadable view of one).
type Connections interface {
	Get(name string) (*connections.Connection, bool)
}

// Starter durably starts (or finds) the run for one event.
type Starter interface {
	// Start starts the deal's run for a triggering event: res.RunID is the
	// run, a new one unless res.Duplicate (the start met the deal's
	// existing run, running or completed).
	Start(ctx context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, error)
	// Notify delivers a non-triggering event to the deal's running run, if
	// there is one (delivered reports whether there was). A delivered
	// event whose res.RunID is set reached a run by a start (a loss that
	// TemporalStarter.Notify records in a run of its own when the deal has
	// none): a new run, unless res.Duplicate says the start met the deal's
	// running run, which took the event. The intake answers that event as
	// handed over (notified), not as a duplicate. An error refuses the
	// delivery: ErrWinPending (503) when the event may belong to a run
	// about to start.
	Notify(ctx context.Context, conn *connections.Connection, ev model.DealEvent) (res connectors.EventResult, delivered bool, err error)
	// Ready reports whether runs can be started now.
	Ready(ctx context.Context) error
}

// FrontendChecker is a Starter that can check the workflow engine's
// frontend alone (ErrUnavailable when it does not answer), without the
// rest of Ready (TemporalStarter: the namespace's search attributes, a
// read of the namespace that costs the server a database read). Watch
// uses it when the Starter has it, Ready otherwise.
type FrontendChecker interface {
	CheckFrontend(ctx context.Context) error
}

// NamespaceChecker is a FrontendChecker that can check its namespace
// alone (a *NamespaceError when the namespace does not exist or the
// frontend refuses the credentials for it), without the rest of Ready:
// Watch checks it after the frontend, so that a namespace deleted or
// credentials withdrawn are logged as the frontend's outages are.
type NamespaceChecker interface {
	CheckNamespace(ctx context.Context) error
}

// NamespaceError is a readiness failure of the namespace itself, the
// frontend answering: it does not exist, or the frontend refuses the
// process's credentials for it. Every start fails until it is mended.
type NamespaceError struct{ Err error }

func (e *NamespaceError) Error() string { return e.Err.Error() }
func (e *NamespaceError) Unwrap() error { return e.Err }

// StoreError is a readiness failure of Temporal's database, the frontend
// and the namespace answering: a read of a run (which the history
// service makes in the database) got no answer. Every start fails
// (503) until the database answers again.
type StoreError struct{ Err error }

func (e *StoreError) Error() string { return e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

// ErrTrigger marks a delivery refused because a connection's trigger
// expression failed on one of its deals (answered 500: the CRM sends it
// again, and the deal starts its run once the mapping is fixed).
var ErrTrigger = errors.New("trigger could not be evaluated; fix the mapping: this delivery is refused until then")

// ErrUnavailable marks start failures where the engine could not be
// reached; the intake answers 503 so that the sender retries.
var ErrUnavailable = errors.New("workflow engine unavailable")

// ErrWinPending marks a delivery refused (503, with Retry-After) because
// a change of a won deal met no run of the deal, on a connection whose
// runs settle, within the settle time of the change: the win that starts
// the deal's run may still come (TemporalStarter.Notify), and that run is
// to bill the newer state. Nothing is acknowledged: the CRM sends the
// change again. The delivery's other deals' events are handed on all the
// same (startAll), and a delivery refused for holds alone is counted as
// metrics.CodeHeld and logged at info, not as an outage (heldOnly).
var ErrWinPending = errors.New("a change of a won deal came before the deal's run")

// ErrTooLarge marks a start that Temporal refused because the deal's
// event is larger than it takes in a run's input (the server's blob size
// limit, 2 MB by default): the delivery is refused with 413, as sending it
// again cannot help.
var ErrTooLarge = errors.New("the deal is too large for a run's input (Temporal's blob size limit)")

// Options configure the intake.
type Options struct {
	Connections Connections
	Starter     Starter
	Logger      *slog.Logger
	// MaxBodyBytes bounds a delivery (default 1 MiB); larger → 413.
	MaxBodyBytes int64
	// MaxInFlightBytes bounds the webhook bodies this replica holds at
	// once, from their headers until they are answered (default 64 MiB,
	// at least MaxBodyBytes): a delivery that would pass it gets 503 with
	// Retry-After, so that a flood of large or slow bodies, signed or
	// not, cannot exhaust the memory. A body counts as the buffer it is
	// read into: 4 KiB (less when it declares less), doubling as its
	// bytes come (readBody).
	MaxInFlightBytes int64
	// PublicBaseURL is the scheme://host[:port] the CRMs call, for sources
	// whose signature covers the URL; empty means what the request says.
	PublicBaseURL string
	// StartTimeout bounds how long one start (or signal) waits for the
	// engine; a delivery's starts take at most BatchTimeouts times that
	// in all, after at most one StartTimeout for a source's CRM read
	// (Resolve).
	StartTimeout time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Handler serves POST /webhooks/{connection}, GET /healthz and GET /readyz.
type Handler struct {
	opts     Options
	mux      *http.ServeMux
	draining atomic.Bool
	inFlight *semaphore.Weighted
	frontend outagelog.Log // the frontend's outages, as /readyz and Watch meet them
	// namespace is the namespace's problems (NamespaceError), met while
	// the frontend answers.
	namespace outagelog.Log
	// store is the outages of Temporal's database (StoreError), met while
	// the frontend and the namespace answer.
	store outagelog.Log
}

// Drain makes GET /readyz answer 503 from now on, while webhooks are still
// taken: a replica being stopped tells its load balancer to send it no
// more before it stops listening (app.ServeIntake).
func (h *Handler) Drain() { h.draining.Store(true) }

// MaxHandlerTime is the longest a webhook takes once its body is read:
// resolving its deals (one StartTimeout) and all of its starts (within
// BatchTimeouts times StartTimeout).
func (h *Handler) MaxHandlerTime() time.Duration {
	return MaxHandlerTime(h.opts.StartTimeout)
}

// MaxHandlerTime is Handler.MaxHandlerTime of an intake whose
// intake.start_timeout is startTimeout.
func MaxHandlerTime(startTimeout time.Duration) time.Duration {
	return (1 + BatchTimeouts) * startTimeout
}

// New builds the intake handler.
func New(o Options) *Handler {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.MaxInFlightBytes <= 0 {
		o.MaxInFlightBytes = 64 << 20
	}
	o.MaxInFlightBytes = max(o.MaxInFlightBytes, o.MaxBodyBytes)
	if o.StartTimeout <= 0 {
		o.StartTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Handler{opts: o, mux: http.NewServeMux(), inFlight: semaphore.NewWeighted(o.MaxInFlightBytes)}
	h.mux.HandleFunc(webhookPattern, h.webhook)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	h.mux.HandleFunc("GET /readyz", h.ready)
	return h
}

const webhookPattern = "POST /webhooks/{connection}"

// ServeHTTP implements http.Handler, with one access-log line per request
// (never a body or a header value) and the webhook metrics.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	note := &answerNote{}
	r = r.WithContext(context.WithValue(r.Context(), answerNoteKey{}, note))
	// The bytes of the body read, whatever it declared (a sender that
	// stalls, a chunked body): the access log's bytes_in.
	body := &countingBody{ReadCloser: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}
	h.mux.ServeHTTP(&routeRefusals{ResponseWriter: rec, r: r, conns: h.opts.Connections}, r)
	// Every request to a webhook URL counts, the router's refusals too (a
	// CRM given /webhooks/demo/ or a GET): what the CRMs get.
	if r.Pattern == webhookPattern || r.URL.Path == "/webhooks" || strings.HasPrefix(r.URL.Path, "/webhooks/") {
		name := ""
		if r.Pattern == webhookPattern {
			name = r.PathValue("connection")
		}
		if _, ok := h.opts.Connections.Get(name); !ok {
			name = "" // not configured: no label per made-up name
		}
		switch {
		case note.held && rec.status == http.StatusServiceUnavailable:
			metrics.WebhookHeld(name, time.Since(start))
		case note.clientGone:
			metrics.WebhookClientGone(name, time.Since(start))
		default:
			metrics.Webhook(name, rec.status, time.Since(start))
		}
	}
	level := slog.LevelInfo
	switch {
	case r.Pattern == "GET /healthz" || r.Pattern == "GET /readyz":
		// A balancer's or kubelet's probes, every few seconds per
		// replica: at debug, failing or not (an outage is said once a
		// minute by checkReady).
		level = slog.LevelDebug
	case rec.status >= 500 && !note.held:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", rec.status),
		slog.Int64("bytes_in", body.n),
	}
	if r.ContentLength >= 0 && r.ContentLength != body.n {
		// Declared and not read (refused before, or cut off): both said.
		attrs = append(attrs, slog.Int64("content_length", r.ContentLength))
	}
	if note.clientGone {
		attrs = append(attrs, slog.Bool("client_gone", true))
	}
	h.opts.Logger.LogAttrs(r.Context(), level, "http request", append(attrs,
		slog.Duration("duration", time.Since(start)),
		slog.String("remote", r.RemoteAddr),
	)...)
}

// countingBody counts the bytes read of a request's body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// answerNote is what the webhook handler tells ServeHTTP of its answer
// beyond the status: held, a 503 that only holds changes of won deals
// until their runs exist (ErrWinPending), counted apart from an outage's
// (metrics.CodeHeld) and logged at info; clientGone, a body its sender
// stopped sending, the connection closed or reset before it was whole:
// answered 400, which no one may read, and counted apart from the
// payloads that cannot be read (metrics.CodeClientGone).
type answerNote struct{ held, clientGone bool }

type answerNoteKey struct{}

func (h *Handler) ready(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining", "error": "this replica is shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.StartTimeout)
	defer cancel()
	if err := h.checkReady(ctx); err != nil {
		// The frontend's own error (its address, the dial's) goes to the
		// log, not to whoever asks on the webhook port; dealsync's own
		// findings (a missing namespace or search attribute) are said.
		msg := err.Error()
		if errors.Is(err, ErrUnavailable) {
			msg = "the Temporal frontend does not answer (the intake's log says why)"
		} else if se := (*StoreError)(nil); errors.As(err, &se) {
			msg = "the Temporal frontend answers, but Temporal cannot read runs (its database or history service): runs cannot be started (the intake's log says why)"
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": msg})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// checkReady asks the Starter whether runs can be started now, and logs
// the frontend's outages (h.frontend) and the namespace's problems
// (h.namespace): when one starts, then once a minute while it lasts, and
// when it ends, however often /readyz and Watch ask. A replica that
// drains says nothing: its client is closing.
func (h *Handler) checkReady(ctx context.Context) error {
	started := h.frontend.Start()
	err := h.opts.Starter.Ready(ctx)
	if errors.Is(ctx.Err(), context.Canceled) {
		// The prober gave up (a load balancer's probe timeout shorter
		// than the check): what the check met then, a call cut short, says
		// nothing of Temporal, neither an outage nor its end.
		if err == nil {
			err = ctx.Err()
		}
		return err
	}
	return h.logReadiness(started, err)
}

// checkWatched is Watch's check: the frontend's health (FrontendChecker),
// then, when it answers, the namespace alone (NamespaceChecker: one read
// of it), logged as checkReady logs them. The search attributes are left
// to /readyz: Watch's check runs every few seconds on every replica, and
// would read them for a finding that start-up already tells.
func (h *Handler) checkWatched(ctx context.Context) error {
	fc, ok := h.opts.Starter.(FrontendChecker)
	if !ok {
		return h.checkReady(ctx)
	}
	started := h.frontend.Start()
	err := fc.CheckFrontend(ctx)
	if nc, ok := h.opts.Starter.(NamespaceChecker); ok && err == nil {
		err = nc.CheckNamespace(ctx)
	}
	return h.logReadiness(started, err)
}

// logReadiness logs what err, the result of a readiness check started at
// started, says of the frontend (h.frontend) and, when the frontend
// answered, of the namespace (h.namespace: any other result says it can
// be used); a result older than the last recorded is ignored. It returns
// err.
func (h *Handler) logReadiness(started time.Time, err error) error {
	if h.draining.Load() {
		return err
	}
	if errors.Is(err, ErrUnavailable) {
		h.frontend.Down(started, func(unsaid int) {
			h.opts.Logger.Warn(outagelog.NotReady, outagelog.Attrs(unsaid, "error", err.Error())...)
		})
		return err
	}
	h.frontend.Up(started, func(unsaid int) { h.opts.Logger.Info(outagelog.Ready, outagelog.Attrs(unsaid)...) })
	if ne := (*NamespaceError)(nil); errors.As(err, &ne) {
		h.namespace.Down(started, func(unsaid int) {
			h.opts.Logger.Warn(outagelog.NamespaceNotReady, outagelog.Attrs(unsaid, "error", ne.Error())...)
		})
		return err
	}
	h.namespace.Up(started, func(unsaid int) { h.opts.Logger.Info(outagelog.NamespaceReady, outagelog.Attrs(unsaid)...) })
	// The store is checked after the namespace: its state is known when
	// the check ended with it, or passed it (no error).
	if se := (*StoreError)(nil); errors.As(err, &se) {
		h.store.Down(started, func(unsaid int) {
			h.opts.Logger.Warn(outagelog.StoreNotReady, outagelog.Attrs(unsaid, "error", se.Error())...)
		})
	} else if err == nil {
		h.store.Up(started, func(unsaid int) { h.opts.Logger.Info(outagelog.StoreReady, outagelog.Attrs(unsaid)...) })
	}
	return err
}

// Watch checks the frontend's health and the namespace (checkWatched:
// not its search attributes, which /readyz reads too), every interval
// until ctx ends (each check given at most StartTimeout), so that the
// frontend's outages and the namespace's problems are logged when they
// start and end whether or not anything probes /readyz; a probe's check
// stands for one of its own (outagelog.Log.Watch).
// app.ServeIntake runs it.
func (h *Handler) Watch(ctx context.Context, interval time.Duration) {
	h.frontend.Watch(ctx, interval, h.opts.StartTimeout, func(ctx context.Context) {
		if !h.draining.Load() {
			_ = h.checkWatched(ctx)
		}
	})
}

// refuseTooLarge answers 413 to a body over intake.max_body_bytes (of
// the declared length, or -1 when it was found out while reading it).
func (h *Handler) refuseTooLarge(w http.ResponseWriter, reply connectors.Acknowledger, log *slog.Logger, declared int64) {
	msg := fmt.Sprintf("body exceeds %d bytes", h.opts.MaxBodyBytes)
	var more []any
	if declared >= 0 {
		more = append(more, "content_length", declared)
	}
	refused(log, slog.LevelInfo, http.StatusRequestEntityTooLarge, msg+" (intake.max_body_bytes)", more...)
	reply.Refuse(w, http.StatusRequestEntityTooLarge, msg)
}

// refused logs a webhook refused with status, at level: every refusal
// is one message, "webhook refused", with the status answered and the
// reason (what the sender got, and what only the log says), and more
// attributes. The failures that are the intake's own, not the
// sender's, say what they are: "webhook not acknowledged; sender must
// retry" (or "not judged", the CRM's API), with the error.
func refused(log *slog.Logger, level slog.Level, status int, reason string, more ...any) {
	log.Log(context.Background(), level, "webhook refused", append([]any{"status", status, "reason", reason}, more...)...)
}

func (h *Handler) webhook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("connection")
	conn, ok := h.opts.Connections.Get(name)
	if !ok {
		// Refused unread, as below: the connection closes after the
		// answer, or net/http would read up to 256 KiB of the body first.
		w.Header().Set("Connection", "close")
		refused(h.opts.Logger.With("connection", name), slog.LevelInfo, http.StatusNotFound,
			"no connection of that name in this intake's config (the CRM's URL, or a config not deployed to every replica?)"+meantConnection(h.opts.Connections, name))
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown connection %q", name))
		return
	}
	reply := replier(conn.Source)
	log := h.opts.Logger.With("connection", name)

	if !mediaTypeAccepted(conn.Source, r.Header.Get("Content-Type")) {
		w.Header().Set("Connection", "close")
		msg := fmt.Sprintf("content type %q not accepted; send %s", r.Header.Get("Content-Type"), strings.Join(mediaTypes(conn.Source), " or "))
		refused(log, slog.LevelInfo, http.StatusUnsupportedMediaType, msg)
		reply.Refuse(w, http.StatusUnsupportedMediaType, msg)
		return
	}
	if enc := encoded(r.Header); enc != "" {
		// The signature is over the bytes as the CRM made them: a
		// compressed body is neither verified nor parsed as sent (RFC
		// 9110 15.5.16: 415, saying what is accepted).
		w.Header().Set("Accept-Encoding", "identity")
		w.Header().Set("Connection", "close")
		msg := fmt.Sprintf("content encoding %q not accepted; send the body uncompressed", enc)
		refused(log, slog.LevelInfo, http.StatusUnsupportedMediaType, msg)
		reply.Refuse(w, http.StatusUnsupportedMediaType, msg)
		return
	}
	if r.ContentLength > h.opts.MaxBodyBytes {
		// Not read: the connection closes after the answer (net/http
		// would read up to 256 KiB of it before answering otherwise).
		w.Header().Set("Connection", "close")
		h.refuseTooLarge(w, reply, log, r.ContentLength)
		return
	}
	body, held, err := h.readBody(w, r)
	defer h.inFlight.Release(held)
	if errors.Is(err, errInFlight) {
		refused(log, slog.LevelWarn, http.StatusServiceUnavailable,
			"this replica holds as many webhook bodies as intake.max_inflight_bytes allows; the sender must retry", "bytes", held)
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close") // not read to its end, and this replica is full
		reply.Refuse(w, http.StatusServiceUnavailable, "too many webhooks in flight on this replica; retry later")
		return
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			// The connection is closed after the answer: net/http would
			// otherwise read the rest of the body before answering (w is
			// wrapped, so MaxBytesReader could not tell it), and a sender
			// that stalls mid-body would get its 413 at the read timeout.
			w.Header().Set("Connection", "close")
			h.refuseTooLarge(w, reply, log, -1)
			return
		}
		// A body that stopped coming (the server's read timeout, a sender
		// too slow) is not a malformed one: 408, which senders retry, not
		// the 400 some take as final. The connection's own error (its
		// addresses) goes to the log, not to the sender.
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			refused(log, slog.LevelInfo, http.StatusRequestTimeout, "the body did not arrive in time: "+err.Error())
			reply.Refuse(w, http.StatusRequestTimeout, "the body did not arrive within the intake's read timeout; send it again, whole")
			return
		}
		msg := "reading body: " + err.Error()
		if errors.As(err, &netErr) {
			msg = "reading body: the connection failed before the body was read"
		}
		if (errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr)) && !errors.Is(err, net.ErrClosed) {
			// The sender closed (or reset) the connection before its
			// body was whole: no payload to judge, and likely no one to
			// read the answer. Counted apart (client_gone), not as a
			// 400 of a payload the source cannot read. A connection this
			// process closed itself (net.ErrClosed: the server shutting
			// down) is not the sender's doing.
			if note, ok := r.Context().Value(answerNoteKey{}).(*answerNote); ok {
				note.clientGone = true
			}
			read := ""
			if c, ok := r.Body.(*countingBody); ok {
				read = fmt.Sprintf("%d bytes read, ", c.n)
				if r.ContentLength >= 0 {
					read = fmt.Sprintf("%d of its %d bytes read, ", c.n, r.ContentLength)
				}
			}
			refused(log, slog.LevelInfo, http.StatusBadRequest, "the sender closed the connection before its body was whole ("+read+
				"counted as client_gone): "+err.Error())
			reply.Refuse(w, http.StatusBadRequest, msg)
			return
		}
		refused(log, slog.LevelInfo, http.StatusBadRequest, "reading the body failed: "+err.Error())
		reply.Refuse(w, http.StatusBadRequest, msg)
		return
	}
	hook := &connectors.Webhook{Method: r.Method, URL: h.publicURL(r), Header: r.Header, Body: body, Received: h.opts.Now(), Log: log}
	if err := conn.Source.Verify(hook); err != nil {
		// A body that authenticated but cannot say whose it is (a
		// portal- or company-bound credential) is malformed: 400.
		status := http.StatusUnauthorized
		if errors.Is(err, connectors.ErrMalformed) && !errors.Is(err, connectors.ErrUnauthorized) {
			status = http.StatusBadRequest
		}
		refused(log, slog.LevelInfo, status, err.Error())
		if c, ok := conn.Source.(connectors.Challenger); ok && status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", c.Challenge())
		}
		// The log's line says what to check (the settings' names); the
		// sender, not authenticated, is answered without it.
		reply.Refuse(w, status, connectors.Terse(err))
		return
	}
	if hook.PreviousSecret {
		metrics.PreviousSecret(name)
		log.Debug("webhook authenticated by the secret being rotated out (previous_…)")
	}
	events, err := conn.Source.Parse(hook)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, connectors.ErrUnknownAccount) {
			status = http.StatusForbidden
		}
		refused(log, slog.LevelInfo, status, err.Error())
		reply.Refuse(w, status, err.Error())
		return
	}
	// A connection whose runs listen orders a deal's whole-deal events by
	// their time (the newest says the deal's state): one without a time
	// would count as older than any, and a loss sent without one would
	// never stop the invoice of the win before it.
	if conn.Listens() {
		for _, ev := range events {
			if !ev.Thin && ev.OccurredAt.IsZero() {
				msg := fmt.Sprintf("event %q of deal %q has no occurred_at: connection %q orders a deal's events by it (it has a settle_time or a linger); send each event's time", ev.EventID, ev.Deal.ID, name)
				refused(log, slog.LevelInfo, http.StatusBadRequest, msg)
				reply.Refuse(w, http.StatusBadRequest, msg)
				return
			}
		}
	}
	// Events of the batch that could not be read: the others go through.
	for _, err := range hook.Unreadable {
		log.Warn("webhook event cannot be read; left out, the delivery's other events are taken", "event_id", connectors.UnreadableEventID(err), "reason", err.Error())
	}
	if res, ok := conn.Source.(connectors.EventResolver); ok {
		ctx, cancel := context.WithTimeout(connectors.WithLogger(r.Context(), log), h.opts.StartTimeout)
		err := res.Resolve(ctx, events)
		cancel()
		if err != nil {
			status := http.StatusInternalServerError
			switch {
			case errors.Is(err, connectors.ErrCRMUnavailable):
				status = http.StatusServiceUnavailable
			case errors.Is(err, connectors.ErrUnknownAccount):
				status = http.StatusForbidden
			}
			if status == http.StatusForbidden {
				// Not the CRM's outage: an account this connection
				// does not take, refused as Parse refuses one.
				refused(log, slog.LevelInfo, status, err.Error())
			} else {
				log.Warn("webhook not judged; sender must retry", "status", status, "error", err.Error())
			}
			public := err.Error()
			if status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", retryAfter(err, h.opts.Now()))
				// Its text names the API's URL and the network's error
				// (a proxy's address): for the log, not the sender.
				public = crmRefusal
			}
			reply.Refuse(w, status, public)
			return
		}
	}

	results, outcomes, err := h.startAll(r.Context(), conn, events)
	if err != nil {
		status := http.StatusInternalServerError
		held := heldOnly(err)
		switch {
		case errors.Is(err, ErrUnavailable), held:
			status = http.StatusServiceUnavailable
		case errors.Is(err, ErrTooLarge):
			status = http.StatusRequestEntityTooLarge
		}
		level := slog.LevelWarn
		if errors.Is(err, ErrTrigger) || status == http.StatusRequestEntityTooLarge {
			level = slog.LevelError // needs an integration engineer, not time
		}
		switch {
		case status == http.StatusRequestEntityTooLarge:
			reason := "a deal is too large for a run's input"
			if len(events) > 1 {
				reason += " (the delivery's other deals were started)"
			}
			refused(log, level, status, reason+": "+err.Error())
		case held:
			// Refused on purpose, not an outage: counted as 503_held,
			// logged at info, the hold's text as its reason (what the
			// sender is told) and what a hold is as a note.
			if note, ok := r.Context().Value(answerNoteKey{}).(*answerNote); ok {
				note.held = true
			}
			refused(log, slog.LevelInfo, status, err.Error(), "note", heldReason)
		default:
			// Not the sender's fault: the error is the intake's own
			// (Temporal's answer, a trigger that failed). The events that
			// reached their runs before are counted (taken): the delivery
			// sent again meets them, a start as a duplicate.
			more := []any{"status", status}
			if re, ok := errors.AsType[*refusedError](err); ok && re.taken > 0 {
				more = append(more, "taken", re.taken, "events", re.events)
			}
			log.Log(r.Context(), level, "webhook not acknowledged; sender must retry", append(more, "error", err.Error())...)
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfter(err, h.opts.Now()))
		}
		reply.Refuse(w, status, publicText(err))
		if status == http.StatusRequestEntityTooLarge {
			// Final: no retry of this delivery will count what it did.
			h.countEvents(name, hook, outcomes)
		}
		return
	}
	status := http.StatusOK
	for _, res := range results {
		if res.Skipped == "" {
			status = http.StatusAccepted
		}
	}
	for _, ig := range hook.Ignored {
		results = append(results, connectors.EventResult{EventID: ig.EventID, DealID: ig.DealID, Skipped: ig.Reason})
	}
	for _, dr := range hook.Dropped {
		results = append(results, connectors.EventResult{EventID: dr.EventID, DealID: dr.DealID, Skipped: dr.Reason})
	}
	for _, err := range hook.Unreadable {
		results = append(results, connectors.EventResult{EventID: connectors.UnreadableEventID(err), Skipped: "cannot be read, left out: " + err.Error()})
	}
	acknowledge(w, reply, status, results, outcomes)
	h.countEvents(name, hook, outcomes)
	if log.Enabled(r.Context(), slog.LevelDebug) {
		// Where each event went, for an operator following one delivery
		// to its run (log.level debug).
		for i, res := range results[:len(outcomes)] {
			log.Debug("webhook event", "event_id", res.EventID, "deal_id", res.DealID, "outcome", outcomes[i],
				"workflow_id", res.WorkflowID, "run_id", res.RunID, "skipped", res.Skipped)
		}
	}
}

// countEvents counts a delivery's event outcomes ("" for none) and its
// dropped, ignored (hook.Ignored) and unreadable events: once, with the
// delivery that went through or was refused for good (413), as a refused
// one comes again and would count them each time.
func (h *Handler) countEvents(connection string, hook *connectors.Webhook, outcomes []string) {
	for _, o := range outcomes {
		if o != "" {
			metrics.Event(connection, o)
		}
	}
	for range hook.Dropped {
		metrics.Event(connection, metrics.EventDropped)
	}
	for range hook.Ignored {
		metrics.Event(connection, metrics.EventIgnored)
	}
	for range hook.Unreadable {
		metrics.Event(connection, metrics.EventUnreadable)
	}
}

// BatchTimeouts is how many StartTimeouts a delivery's starts may take in
// all: a batch of many deals gets more than one start's time, and still a
// bound, under what the CRMs wait for an answer with the default 5 s.
const BatchTimeouts = 3

// startAll evaluates the trigger of each event and starts the runs, a few
// at a time, each start within StartTimeout and all of them within
// BatchTimeouts times that (a batch of many deals is not held to one
// start's time). Any failed start fails the whole delivery and
// stops the starts not yet done: the sender retries it, and the starts
// that did succeed come back as duplicates. A trigger that fails on a deal
// holds back that deal's events and fails the delivery too, after the
// other deals' starts, and so does a change held for its deal's win
// (ErrWinPending: the delivery is answered 503, the other deals' events
// handed on all the same, so that a sender that gives up on the delivery
// loses the held change only). outcomes are the events' metrics.Event*
// outcomes; the error joins the first start's that failed, the first
// hold's and the first trigger's.
func (h *Handler) startAll(ctx context.Context, conn *connections.Connection, events []model.DealEvent) (results []connectors.EventResult, outcomes []string, _ error) {
	// The whole delivery has a deadline too: a sender waits for its answer
	// (and sends it again when it waits too long).
	ctx, cancel := context.WithTimeout(ctx, BatchTimeouts*h.opts.StartTimeout)
	defer cancel()
	results = make([]connectors.EventResult, len(events))
	outcomes = make([]string, len(events))
	errs := make([]error, len(events))
	var (
		mu       sync.Mutex
		firstErr error
		// tooLarge is the first start refused as too large for a run: it
		// fails the delivery (413) but stops no other start, as no retry
		// can help it, and a sender may not send a 4xx delivery again.
		tooLarge error
		// held is the first change held for its deal's win (ErrWinPending):
		// it fails the delivery (503) but stops no other deal's start: the
		// sender may give up on the change after a few tries, and the
		// other deals' wins must not go with it (sent again, they meet
		// their runs as duplicates).
		held error
	)
	failed := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, ErrTooLarge):
			if tooLarge == nil {
				tooLarge = err
			}
		case errors.Is(err, ErrWinPending):
			if held == nil {
				held = err
			}
		case firstErr == nil:
			firstErr = err
			cancel() // the delivery is refused: the other starts can stop
		}
	}
	// start hands event i to its run: a start when it triggers one, else a
	// signal to the deal's running run.
	start := func(i int, ok bool, reason string) {
		ctx, cancel := context.WithTimeout(ctx, h.opts.StartTimeout)
		defer cancel()
		ev := events[i]
		if ok {
			results[i], errs[i] = h.opts.Starter.Start(ctx, conn, ev)
			switch {
			case errs[i] != nil:
				// no outcome: the delivery is refused
			case results[i].Duplicate:
				outcomes[i] = metrics.EventDuplicate
			default:
				outcomes[i] = metrics.EventStarted
			}
			return
		}
		res, delivered, err := h.opts.Starter.Notify(ctx, conn, ev)
		switch {
		case err != nil:
			// no outcome: the delivery is refused
		case !delivered:
			res.WorkflowID, res.Skipped = "", reason+"; no run in progress for this deal"
			outcomes[i] = metrics.EventIgnored
		case res.RunID != "" && !res.Duplicate:
			outcomes[i] = metrics.EventStarted // a run that records a loss
		default:
			// Handed to the deal's running run (a loss's start that met it
			// says Duplicate): the run takes the event, or drops it if it
			// has its event id already, which the intake cannot tell. Not a
			// duplicate of the run: answered notified, as it is counted,
			// with the run's id when the start named it.
			res.Duplicate = false
			outcomes[i] = metrics.EventNotified
		}
		results[i], errs[i] = res, err
	}
	// The events of one deal go to its run one after another and stop at
	// the first that fails (the delivery is then refused and sent again).
	// Those that reach a run on their own go first, in the order the
	// delivery lists them: the triggering events (a start, or a signal
	// with start) and, on a connection whose runs listen, the losses
	// (workflows.IsLoss: Notify records them in a run of their own when
	// the deal has none). The deal's other events (an amount change, a
	// loss that does not name the won stage it left) are plain signals to
	// the deal's running run: they follow, in the delivery's order, so
	// that none finds no run because the delivery listed it before the
	// event that starts the run (a newer loss before its win would be
	// dropped, and the win invoiced). The order of the events in the
	// delivery says nothing of their time: the run orders the events it
	// receives by occurred_at. Different deals go concurrently.
	type step struct {
		i      int
		ok     bool
		reason string
		opens  bool // reaches a run without one running (ok, or a loss)
	}
	// A trigger that fails on an event is neither a yes nor a no: none of
	// that deal's events is handed on, and the delivery is refused after
	// the other deals' (the CRM sends it again, and the deal starts its run
	// once the mapping is fixed; the others meet theirs as duplicates).
	var triggerErr error
	var triggerPublic string      // what the sender is told of triggerErr
	var undecided map[string]bool // deals whose trigger failed
	keys := make([]string, len(events))
	verdicts := make([]step, len(events))
	for i, ev := range events {
		keys[i] = ev.Account + "\x00" + ev.Deal.ID
		ok, reason, err := conn.Trigger.Evaluate(ev)
		if err != nil {
			if undecided == nil {
				undecided = map[string]bool{}
			}
			undecided[keys[i]] = true
			if triggerErr == nil {
				triggerErr = fmt.Errorf("%w: %w", ErrTrigger, err)
				// The sender (the CRM, whose delivery logs others may read)
				// is told which deal, not the mapping's file, expression
				// and values: those are in dealsync's log.
				triggerPublic = fmt.Sprintf("%v (deal %s, event %s; the expression's error is in dealsync's log)", ErrTrigger, ev.Deal.ID, ev.EventID)
			}
		}
		verdicts[i] = step{i: i, ok: ok, reason: reason}
	}
	// Without a run that listens, a win is judged on its own; a newer
	// event of the same deal in the same delivery that has the deal out of
	// the won stages (the deal lost again since) says it is no longer won:
	// the win starts no run. Of two wins of a deal in one delivery, the
	// newer starts the run, whatever their order in the batch: the run
	// invoices the deal its event carries, and the older one's is stale
	// (the other would meet the run as a duplicate).
	if !conn.Listens() {
		won := make([]bool, len(events)) // the trigger's verdicts, before this
		for i := range verdicts {
			won[i] = verdicts[i].ok
		}
		newer := func(i, j int) bool {
			return j != i && keys[j] == keys[i] && !events[j].Thin && events[j].OccurredAt.After(events[i].OccurredAt)
		}
		for i, ev := range events {
			if !won[i] || ev.Thin || ev.OccurredAt.IsZero() {
				continue
			}
			for j, later := range events {
				// Out of the won stages as a run judges it (neither a won
				// stage nor the win's own, which a mapping's trigger may
				// take without the connection listing it as won).
				if newer(i, j) && workflows.LeftWonStage(workflows.InvoiceDealInput{Event: ev, WonStages: conn.WonStages}, later) {
					verdicts[i] = step{i: i, reason: fmt.Sprintf("a newer event of this deal in the same delivery (%s) has it in stage %q, not a won stage", later.EventID, later.Deal.Stage)}
					break
				}
			}
			if !verdicts[i].ok {
				continue
			}
			for j, later := range events {
				if newer(i, j) && won[j] {
					verdicts[i] = step{i: i, reason: fmt.Sprintf("a newer won event of this deal in the same delivery (%s) starts its run instead", later.EventID)}
					break
				}
			}
		}
	}
	var deals [][]step
	byDeal := map[string]int{}
	for i, ev := range events {
		key := keys[i]
		if undecided[key] {
			continue
		}
		v := verdicts[i]
		// An event that does not trigger may still belong to the deal's
		// running run: always for thin events (an amount change), and for
		// whole-deal events when the connection's runs listen.
		if !v.ok && !ev.Thin && !conn.Listens() {
			results[i] = connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, Skipped: v.reason}
			outcomes[i] = metrics.EventIgnored
			continue
		}
		v.opens = v.ok || recordsLoss(conn, ev)
		d, seen := byDeal[key]
		if !seen {
			d = len(deals)
			byDeal[key] = d
			deals = append(deals, nil)
		}
		deals[d] = append(deals[d], v)
	}
	for _, steps := range deals {
		slices.SortStableFunc(steps, func(a, b step) int {
			switch {
			case a.opens == b.opens:
				return 0
			case a.opens:
				return -1
			}
			return 1
		})
	}
	run := func(steps []step) {
		for _, st := range steps {
			start(st.i, st.ok, st.reason)
			if errs[st.i] != nil {
				failed(errs[st.i])
				return
			}
		}
	}
	// refusal is the error the delivery is refused with, if any: the first
	// start's that failed (503 when the engine is unavailable), the first
	// hold's and the first trigger's, all reported.
	refusal := func() error {
		if firstErr == nil && triggerErr == nil && held == nil {
			return tooLarge // nil, or 413
		}
		var public []string
		// The events that reached their runs before the refusal (a start,
		// a duplicate, a hand-over): the engine recorded them, and the
		// delivery sent again meets them (a start as a duplicate).
		taken := 0
		for _, o := range outcomes {
			if o != "" && o != metrics.EventIgnored {
				taken++
			}
		}
		switch {
		case firstErr != nil && errors.Is(firstErr, ErrUnavailable):
			public = append(public, engineRefusalText(taken, len(events)))
		case firstErr != nil:
			public = append(public, firstErr.Error())
		}
		if held != nil {
			public = append(public, held.Error())
			if firstErr == nil && len(deals) > 1 {
				// Only when refused for holds alone: a failed start
				// (firstErr) canceled the starts not yet made.
				public = append(public, "The delivery's other deals' events were handed on (sent again, they meet their runs as duplicates).")
			}
		}
		if triggerErr != nil {
			public = append(public, triggerPublic)
		}
		joined := errors.Join(firstErr, held, triggerErr)
		if tooLarge != nil {
			// Refused for another reason the sender should retry: the
			// answer is that reason's (503, 500), not 413.
			joined = errors.Join(firstErr, held, triggerErr, errors.New(tooLarge.Error()))
			public = append(public, tooLarge.Error())
		}
		return &refusedError{err: joined, public: strings.Join(public, "\n"), held: firstErr == nil && triggerErr == nil, taken: taken, events: len(events)}
	}
	if len(deals) == 1 {
		// Most deliveries carry one deal: no goroutine for it.
		run(deals[0])
		return results, outcomes, refusal()
	}
	// The deals go in an order of their own each time: a delivery that
	// runs out of time (an engine slow to answer) is sent again, and a
	// fixed order would spend each try on the same first deals again
	// (started by then: duplicates, as costly), never reaching the last.
	rand.Shuffle(len(deals), func(i, j int) { deals[i], deals[j] = deals[j], deals[i] })
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, steps := range deals {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := ctx.Err(); err != nil {
				// Not started: the delivery must not be acknowledged (the
				// deadline can pass between two starts, with none failing).
				failed(fmt.Errorf("the delivery's starts ran out of time: %w (%w)", ErrUnavailable, err))
				return
			}
			run(steps)
		}()
	}
	wg.Wait()
	return results, outcomes, refusal()
}

// engineRefusalText is what the sender is told of starts the engine did
// not confirm (ErrUnavailable), taken of the delivery's events having
// reached their runs before: fixed sentences, since the engine's own
// error (its address, in a dial error) is for the log only. Some of the
// runs may have started (those taken, and a start that timed out after
// the engine recorded it), and sending the delivery again is safe: a
// start meets its run as a duplicate.
func engineRefusalText(taken, events int) string {
	if taken == 0 {
		return engineRefusal
	}
	return fmt.Sprintf("the workflow engine did not confirm all of this delivery's runs (unavailable or too slow to answer): %d of the %d events it hands to runs reached them before it failed, "+
		"and others may have; nothing was acknowledged. %s", taken, events, resendIsSafe)
}

// engineRefusal is engineRefusalText of a delivery none of whose events
// was taken.
const engineRefusal = "the workflow engine did not confirm this delivery's runs (unavailable or too slow to answer): nothing was acknowledged, though a run may have started. " + resendIsSafe

// resendIsSafe ends engineRefusalText.
const resendIsSafe = "Send it again: a run that started is answered as a duplicate, and no deal is invoiced twice"

// crmRefusal is what the sender is told when the CRM's API, asked whether
// the delivery's deals are won (connectors.EventResolver), did not answer
// or asked to wait (a 5xx, a 429, a failure not asked again yet).
const crmRefusal = "dealsync could not ask the CRM's API whether this delivery's deals are won (it did not answer, or asked to wait): nothing was acknowledged; send it again"

// refusedError is a delivery's refusal: err, the whole of it, for the log;
// public, what the sender is told (the engine's failure by engineRefusal,
// a trigger's error and a deal too large as they are: an integration
// engineer reading the CRM's delivery log acts on them).
type refusedError struct {
	err    error
	public string
	held   bool // refused only to hold changes of won deals (heldOnly)
	// taken of the delivery's events reached their runs before it was
	// refused (a start, a duplicate, a hand-over).
	taken, events int
}

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// heldOnly says whether err, a delivery's failed starts, refused it only
// to hold changes of won deals until their runs exist (ErrWinPending;
// and maybe a deal too large, which the answer names too): answered 503
// with the hold's Retry-After, counted as metrics.CodeHeld and logged at
// info, not as an outage.
func heldOnly(err error) bool {
	re, ok := errors.AsType[*refusedError](err)
	return ok && re.held
}

// heldReason is the log's note of a delivery refused to hold a change
// of a won deal (heldOnly): what such a refusal is.
const heldReason = "a change of a won deal held until the deal's run exists (the connection's settle_time): not an outage. " +
	"Its win may still come (at another replica, or the CRM's retry of a refused delivery); a change of a deal won before dealsync went live, " +
	"or invoiced longer ago than the Temporal namespace's retention (its run is gone), is held so too, until it is older than the settle_time, then skipped"

// publicText is what the sender is told of err, a delivery's failed starts
// (startAll's refusal: a refusedError, or a deal too large as it is).
func publicText(err error) string {
	if re, ok := errors.AsType[*refusedError](err); ok {
		return re.public
	}
	return err.Error()
}

func (h *Handler) publicURL(r *http.Request) string {
	if h.opts.PublicBaseURL != "" {
		return strings.TrimRight(h.opts.PublicBaseURL, "/") + r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

func mediaTypes(src connectors.Source) []string {
	if mt, ok := src.(connectors.MediaTyper); ok {
		return mt.MediaTypes()
	}
	return []string{"application/json"}
}

func mediaTypeAccepted(src connectors.Source, header string) bool {
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		// A malformed parameter ("application/json; charset", a charset
		// given twice) leaves the media type itself readable: judged by
		// it, not refused for the parameter.
		mt, _, _ = strings.Cut(header, ";")
		mt = strings.TrimSpace(mt)
	}
	return slices.Contains(mediaTypes(src), strings.ToLower(mt))
}

// encoded is the first content coding of the body other than identity
// in h's Content-Encoding lines (each a comma-separated list), "" when
// the body is as sent.
func encoded(h http.Header) string {
	for _, line := range h.Values("Content-Encoding") {
		for _, coding := range strings.Split(line, ",") {
			if c := strings.TrimSpace(coding); c != "" && !strings.EqualFold(c, "identity") {
				return c
			}
		}
	}
	return ""
}

// errInFlight is readBody's error when the bodies this replica holds
// would pass Options.MaxInFlightBytes.
var errInFlight = errors.New("the webhook bodies in flight on this replica are at intake.max_inflight_bytes")

// firstRead is the buffer a body is first read into (less when its
// declared length is less); it doubles as the body comes.
const firstRead = 4 << 10

// readBody reads a delivery's body, at most Options.MaxBodyBytes (a
// declared length was checked before), into a buffer of firstRead that
// doubles as the bytes come, each growth held in h.inFlight: held is
// what the caller releases, also after an error. A sender that declares
// a large body, or sends a chunked one, and then stalls holds at most
// twice what it sent, and firstRead for its headers alone, not what it
// declared: 64 connections that declared 1 MiB each and sent a byte held
// the default 64 MiB, and every connection's signed deliveries got 503
// until they timed out. (16,384 connections that send headers alone
// still do: docs/limitations.md.)
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, held int64, err error) {
	src, limit := io.Reader(r.Body), r.ContentLength
	if limit < 0 {
		src, limit = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes), h.opts.MaxBodyBytes
	}
	for {
		if int64(len(body)) == limit {
			// All it may hold: the end, or (chunked) too much, which
			// MaxBytesReader says.
			var one [1]byte
			if _, err := io.ReadAtLeast(src, one[:], 1); err != io.EOF {
				if err == nil {
					err = errors.New("the body went on past its length")
				}
				return nil, held, err
			}
			return body, held, nil
		}
		if len(body) == cap(body) {
			size := min(max(2*int64(cap(body)), firstRead), limit)
			if !h.inFlight.TryAcquire(size - held) {
				return nil, held, errInFlight
			}
			held = size
			grown := make([]byte, len(body), size)
			copy(grown, body)
			body = grown
		}
		n, err := src.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if err == io.EOF {
			if r.ContentLength >= 0 && int64(len(body)) < r.ContentLength {
				return nil, held, io.ErrUnexpectedEOF
			}
			return body, held, nil
		}
		if err != nil {
			return nil, held, err
		}
	}
}

// replier picks the source's own acknowledgement format, or JSON.
func replier(src connectors.Source) connectors.Acknowledger {
	if a, ok := src.(connectors.Acknowledger); ok {
		return a
	}
	return jsonReplier{}
}

type jsonReplier struct{}

// Acknowledge writes reply as it is; the intake's own deliveries are
// answered by acknowledge, which says which events were handed over.
func (jsonReplier) Acknowledge(w http.ResponseWriter, status int, reply connectors.Reply) {
	writeJSON(w, status, reply)
}

func (jsonReplier) Refuse(w http.ResponseWriter, status int, message string) {
	writeError(w, status, message)
}

// answer is one event's result in the intake's JSON reply: its outcome
// as dealsync_webhook_events_total counts it (outcomes of startAll).
// started: a run_id, neither duplicate nor notified; duplicate: the
// triggering event's start met the deal's existing run (run_id); notified:
// handed to the deal's running run (run_id when the hand-over was a start
// that met it: a loss on a connection whose runs listen); ignored: skipped.
type answer struct {
	connectors.EventResult
	Notified bool `json:"notified,omitempty"`
}

// acknowledge answers a delivery whose events were all taken: in the
// source's own format (an Acknowledger), else as JSON results that say
// each event's outcome (answer; results past outcomes, the unreadable
// events, have none).
func acknowledge(w http.ResponseWriter, reply connectors.Acknowledger, status int, results []connectors.EventResult, outcomes []string) {
	if _, ok := reply.(jsonReplier); !ok {
		reply.Acknowledge(w, status, connectors.Reply{Results: results})
		return
	}
	answers := make([]answer, len(results))
	for i, res := range results {
		answers[i].EventResult = res
		if i < len(outcomes) {
			answers[i].Duplicate = outcomes[i] == metrics.EventDuplicate
			answers[i].Notified = outcomes[i] == metrics.EventNotified
		}
	}
	writeJSON(w, status, struct {
		Results []answer `json:"results"`
	}{answers})
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"status": status, "message": message}})
}

// writeJSON answers v as JSON. The answer is read by people (a sender's
// delivery log, curl), not put in HTML: & < > are written as they are,
// not as json.Marshal's \u0026 \u003c \u003e ("a && b", "1.2.3.4:80->",
// "<none>"); nosniff keeps a browser from taking it for anything but JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// meantConnection is what the log of a webhook to no connection adds:
// the config's connection whose name name looks like a typo of
// ("; did you mean demo?"), "" when none does or conns cannot list its
// names. Only in the log: the answer names no connection to a sender.
func meantConnection(conns Connections, name string) string {
	lister, ok := conns.(interface{ Names() []string })
	if !ok {
		return ""
	}
	if meant, ok := wording.TypoOf(name, lister.Names()); ok {
		return fmt.Sprintf("; did you mean %s?", meant)
	}
	return ""
}

// routeRefusals gives the mux's own refusals the intake's JSON error
// shape instead of the mux's text: 404 for a path no route has, 405 (with
// the mux's Allow header) for a method the path's routes do not take.
// The refusals of a route's handler (r.Pattern set) are theirs. The mux's
// redirect of a path that is not clean (/webhooks//demo, /webhooks/./demo)
// is a 404 naming the clean path: a CRM does not follow a redirect of a
// POST, or follows it with a signature made for the URL it was given.
type routeRefusals struct {
	http.ResponseWriter
	r       *http.Request
	conns   Connections // the config's, named in a hint
	refused bool        // the mux's text that follows is dropped
}

func (w *routeRefusals) WriteHeader(code int) {
	// (The mux sets r.Pattern to the clean path for its redirect; the
	// intake's handlers never redirect.)
	redirect := code >= 300 && code < 400
	if !redirect && (w.r.Pattern != "" || (code != http.StatusNotFound && code != http.StatusMethodNotAllowed)) {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.refused = true
	msg := "not found: the intake serves POST /webhooks/{connection}, GET /healthz and GET /readyz"
	if p, ok := strings.CutPrefix(w.r.URL.Path, "/webhooks/"); ok && strings.HasSuffix(p, "/") {
		if name := strings.TrimSuffix(p, "/"); name != "" && !strings.Contains(name, "/") && w.conns != nil {
			if _, ok := w.conns.Get(name); ok {
				msg += "; give the CRM the URL without the trailing slash: /webhooks/" + name
			}
		}
	}
	switch {
	case code == http.StatusMethodNotAllowed:
		msg = fmt.Sprintf("method %s not allowed here; allowed: %s", w.r.Method, w.Header().Get("Allow"))
	case redirect:
		clean := w.Header().Get("Location")
		if u, err := url.Parse(clean); err == nil {
			clean = u.Path
		}
		w.Header().Del("Location")
		code = http.StatusNotFound
		// The clean path is named only where the intake serves it.
		if served(clean) {
			msg = fmt.Sprintf("not found: %q is not a clean path (an empty or dot segment); give the CRM the URL with the path %s", w.r.URL.Path, clean)
		}
	}
	writeError(w.ResponseWriter, code, msg)
}

// served says whether the intake has a route for path: a webhook URL of
// one connection, /healthz or /readyz.
func served(path string) bool {
	name, ok := strings.CutPrefix(path, "/webhooks/")
	return (ok && name != "" && !strings.Contains(name, "/")) || path == "/healthz" || path == "/readyz"
}

func (w *routeRefusals) Write(b []byte) (int, error) {
	if w.refused {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// unavailableRetryAfter is the Retry-After of a 503 whose cause does not
// say when to ask again (the Temporal frontend not answering, a CRM
// look-up that timed out), in seconds: soon enough for a restart, not a
// tight loop.
const unavailableRetryAfter = 5

// retryAfter is the Retry-After, in whole seconds, of a 503 for err: when
// err knows when asking again may succeed (connectors.RetryAter), the
// seconds until then (at least 1), else unavailableRetryAfter.
func retryAfter(err error, now time.Time) string {
	var ra connectors.RetryAter
	if errors.As(err, &ra) {
		return strconv.FormatInt(max(1, int64(math.Ceil(ra.RetryAt().Sub(now).Seconds()))), 10)
	}
	return strconv.Itoa(unavailableRetryAfter)
}
