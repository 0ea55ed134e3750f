package hubspot

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/connectors/hubspot/hubspotfake"
	"github.com/dealsync/dealsync/model"
)

// renewals is a custom pipeline: numeric stage ids, its own won and lost.
var renewals = hubspotfake.Pipeline{ID: "75e28846-ad0d-4be2-a027-5e1da6590b98", Label: "Renewals", Stages: []hubspotfake.Stage{
	{ID: "98765430", Label: "Renewal due", IsClosed: "false", Probability: "0.5"},
	{ID: "98765431", Label: "Renewed", IsClosed: "true", Probability: "1.0"},
	{ID: "98765432", Label: "Churned", IsClosed: "true", Probability: "0.0"},
	// Probability 1 but still open: not won until it is closed.
	{ID: "98765433", Label: "Verbal yes", IsClosed: "false", Probability: "1.0"},
}}

// renewalsPortal is a fake HubSpot with portal 62515 holding the default
// pipeline and Renewals, and a source reading it (mutate may change its
// config).
func renewalsPortal(t *testing.T, mutate func(*Config)) (*hubspotfake.Server, *Source) {
	t.Helper()
	f := hubspotfake.New()
	t.Cleanup(f.Close)
	f.AddPortal("62515", "pat-na1-62515")
	f.AddPipeline("62515", renewals)
	return f, testSource(t, func(c *Config) {
		c.BaseURL = f.URL
		if mutate != nil {
			mutate(c)
		}
	})
}

// stageEvents are stage changes of portal 62515 to the given stage ids.
func stageEvents(stages ...string) []model.DealEvent {
	evs := make([]model.DealEvent, len(stages))
	for i, st := range stages {
		evs[i] = model.DealEvent{EventID: "e" + st, Account: "62515", Thin: true, Deal: model.Deal{ID: "1", Stage: st}}
	}
	return evs
}

func stagesOf(evs []model.DealEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Deal.Stage
	}
	return out
}

// A custom pipeline's won stage is recognised through the pipelines API,
// without listing it in won_stages; lost, open and unknown ones are not.
func TestResolveReadsWonStagesFromThePipelines(t *testing.T) {
	f, s := renewalsPortal(t, nil)

	evs := stageEvents("98765431", "98765432", "98765433", "98765430", "closedlost", "closedwon", "4242", "")
	if err := s.Resolve(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	want := []string{StageWon, "98765432", "98765433", "98765430", "closedlost", StageWon, "4242", ""}
	if got := stagesOf(evs); !slices.Equal(got, want) {
		t.Errorf("stages %v, want %v", got, want)
	}
	if n := f.Count(http.MethodGet, "/crm/pipelines/2026-03/deals"); n != 1 {
		t.Errorf("%d reads of the pipelines for one delivery, want 1", n)
	}
	for _, r := range f.Requests() {
		if r.Auth != "Bearer pat-na1-62515" {
			t.Errorf("pipelines read with %q", r.Auth)
		}
	}
}

// Stages are read once and trusted for a while; an id the last read did
// not know (a stage created since) causes a new read at once.
func TestResolveCachesThePipelines(t *testing.T) {
	f := hubspotfake.New()
	defer f.Close()
	f.AddPortal("62515", "pat-na1-62515")
	s := testSource(t, func(c *Config) { c.BaseURL = f.URL })
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	ctx := context.Background()
	reads := func() int { return f.Count(http.MethodGet, "/crm/pipelines/2026-03/deals") }

	resolve := func(stage string) string {
		t.Helper()
		evs := stageEvents(stage)
		if err := s.Resolve(ctx, evs); err != nil {
			t.Fatalf("Resolve(%s): %v", stage, err)
		}
		return evs[0].Deal.Stage
	}
	resolve("contractsent")
	now = now.Add(time.Second)
	resolve("closedlost")
	if reads() != 1 {
		t.Fatalf("%d reads for two known stages", reads())
	}
	// The admin adds the Renewals pipeline and a deal is won in it a
	// second later: its stage is new, so the pipelines are read again.
	f.AddPipeline("62515", renewals)
	now = now.Add(time.Second)
	if got := resolve("98765431"); got != StageWon || reads() != 2 {
		t.Errorf("a new stage: %s after %d reads", got, reads())
	}
	// An id no pipeline has (a deleted stage) is read for, then not won.
	now = now.Add(time.Second)
	if got := resolve("4242"); got != "4242" || reads() != 3 {
		t.Errorf("an id of no pipeline: %s after %d reads", got, reads())
	}
	now = now.Add(5 * time.Minute)
	resolve("98765430")
	if reads() != 3 {
		t.Errorf("known stages within 10 minutes: %d reads", reads())
	}
	now = now.Add(6 * time.Minute)
	resolve("98765430")
	if reads() != 4 {
		t.Errorf("known stages after 10 minutes are read again: %d reads", reads())
	}
}

// When HubSpot does not answer, a stage never read cannot be judged: the
// delivery must be refused as unavailable (the intake answers 503 and
// HubSpot delivers it again), never treated as not won. A stage read
// before keeps its last known answer. A failed read is not repeated for
// 30 s: webhooks do not each wait on a failing API.
func TestResolveWhenThePipelinesAPIFails(t *testing.T) {
	f, s := renewalsPortal(t, nil)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	ctx := context.Background()
	reads := func() int { return f.Count(http.MethodGet, "/crm/pipelines/2026-03/deals") }

	f.FailPipelines(hubspotfake.Fault{Status: http.StatusBadGateway})
	err := s.Resolve(ctx, stageEvents("98765431"))
	if !errors.Is(err, connectors.ErrCRMUnavailable) {
		t.Fatalf("Resolve with HubSpot down: %v, want ErrCRMUnavailable", err)
	}
	var apiErr *connectors.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway {
		t.Errorf("the vendor's answer is lost: %v", err)
	}
	// Each refusal says when HubSpot is asked again, for the intake's
	// Retry-After: the first one too.
	failedAt := now
	var ra connectors.RetryAter
	if !errors.As(err, &ra) || !ra.RetryAt().Equal(failedAt.Add(stagesRetry)) {
		t.Errorf("the first refusal %v does not say it asks again at %s", err, failedAt.Add(stagesRetry))
	}
	now = now.Add(20 * time.Second)
	err = s.Resolve(ctx, stageEvents("98765431"))
	if !errors.Is(err, connectors.ErrCRMUnavailable) || reads() != 1 {
		t.Errorf("20 s after a failed read: %v after %d reads, want a refusal without asking", err, reads())
	}
	if !errors.As(err, &ra) || !ra.RetryAt().Equal(failedAt.Add(stagesRetry)) {
		t.Errorf("the refusal %v does not say it asks again at %s", err, failedAt.Add(stagesRetry))
	}

	now = now.Add(15 * time.Second)
	evs := stageEvents("98765431")
	if err := s.Resolve(ctx, evs); err != nil || evs[0].Deal.Stage != StageWon || reads() != 2 {
		t.Fatalf("after HubSpot is back: %v, %s after %d reads", err, evs[0].Deal.Stage, reads())
	}
	now = now.Add(time.Hour)
	f.FailPipelines(hubspotfake.Fault{Status: http.StatusTooManyRequests, RetryAfter: "10"})
	evs = stageEvents("98765431")
	if err := s.Resolve(ctx, evs); err != nil || evs[0].Deal.Stage != StageWon {
		t.Errorf("a stale but known stage is used while HubSpot refuses: %v, %s", err, evs[0].Deal.Stage)
	}
	now = now.Add(time.Second)
	if err := s.Resolve(ctx, stageEvents("11111111")); !errors.Is(err, connectors.ErrCRMUnavailable) || reads() != 3 {
		t.Errorf("an unknown stage while HubSpot refuses: %v after %d reads", err, reads())
	}
	evs = stageEvents("98765432")
	if err := s.Resolve(ctx, evs); err != nil || evs[0].Deal.Stage != "98765432" || reads() != 3 {
		t.Errorf("a known lost stage meanwhile: %v, %s after %d reads", err, evs[0].Deal.Stage, reads())
	}
}

// stage_lookup: none trusts won_stages alone and never calls HubSpot.
func TestResolveWithoutLookup(t *testing.T) {
	f, s := renewalsPortal(t, func(c *Config) {
		c.StageLookup = StageLookupNone
		c.Accounts["62515"] = Account{AccessToken: c.Accounts["62515"].AccessToken, WonStages: []string{"98765430"}}
	})
	evs := stageEvents("98765431", "98765430")
	if err := s.Resolve(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if got := stagesOf(evs); !slices.Equal(got, []string{"98765431", StageWon}) {
		t.Errorf("stages %v", got)
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("%d requests to HubSpot", n)
	}
	cfg := DefaultConfig()
	cfg.StageLookup = "guess"
	cfg.Accounts = map[string]Account{"1": {}}
	if _, err := New(cfg, connectors.Env{}); err == nil {
		t.Error("stage_lookup guess accepted")
	}
}

// FetchDeal judges the deal's current stage the same way, so the run's
// re-check after its settle time agrees with the intake.
func TestFetchDealResolvesTheStage(t *testing.T) {
	f := fakeHubSpot(t, "pat-na1-62515")
	f.AddPipeline("62515", renewals)
	s := apiSource(t, f.URL, func(c *Config) { c.WonStages = nil })
	ctx := context.Background()
	f.SetDealProperty("62515", "1234567890", "dealstage", "98765431")
	if d, err := s.FetchDeal(ctx, "62515", "1234567890"); err != nil || d.Stage != StageWon || string(d.Raw["dealstage"]) != `"98765431"` {
		t.Errorf("won stage of a custom pipeline: %v, %q, raw %s", err, d.Stage, d.Raw["dealstage"])
	}
	f.SetDealProperty("62515", "1234567890", "dealstage", "98765432")
	if d, err := s.FetchDeal(ctx, "62515", "1234567890"); err != nil || d.Stage != "98765432" {
		t.Errorf("lost stage: %v, %q", err, d.Stage)
	}
}

// A delivery waits for another one's read of the pipelines no longer than
// its own time allows (then it is refused, to be sent again), and a read
// cut short by its caller's time is no failure of HubSpot: the next
// delivery reads again instead of being refused for stagesRetry.
func TestResolveKeepsToItsCallersTime(t *testing.T) {
	f, s := renewalsPortal(t, nil)
	held, release := make(chan struct{}, 1), make(chan struct{})
	f.SetPipelinesReadHook(func(ctx context.Context) {
		held <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	released := false
	releaseOnce := func() {
		if !released {
			released = true
			close(release)
		}
	}
	t.Cleanup(releaseOnce)

	first := make(chan error, 1)
	go func() { first <- s.Resolve(context.Background(), stageEvents("98765431")) }()
	<-held // the first delivery's read is in HubSpot

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	second := make(chan error, 1)
	go func() { second <- s.Resolve(ctx, stageEvents("11111111")) }()
	select {
	case err := <-second:
		if !errors.Is(err, connectors.ErrCRMUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiting past its time: %v, want a refusal (ErrCRMUnavailable) for its deadline", err)
		}
	case <-first:
		t.Fatal("the first read ended before it was released")
	case <-time.After(time.Minute):
		t.Fatal("a delivery waited for another's read past its own deadline")
	}
	releaseOnce()
	if err := <-first; err != nil {
		t.Fatal(err)
	}

	// A read whose caller gives up (its HTTP request is cancelled) does
	// not count as HubSpot failing.
	f.SetPipelinesReadHook(func(ctx context.Context) { <-ctx.Done() })
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if err := s.Resolve(ctx2, stageEvents("22222222")); !errors.Is(err, connectors.ErrCRMUnavailable) {
		t.Fatalf("a read cut short by its caller: %v", err)
	}
	f.SetPipelinesReadHook(nil)
	if err := s.Resolve(context.Background(), stageEvents("33333333")); err != nil {
		t.Fatalf("the next delivery: %v, want a new read, not a refusal", err)
	}
}

// missingScopes is HubSpot's 403 for an app without a scope the call needs.
const missingScopes = `{"status":"error","message":"This app hasn't been granted all required scopes to make this call.",` +
	`"correlationId":"5b8d2c7e-0000-4000-8000-000000000000","errors":[{"message":"One or more of the following scopes are required.",` +
	`"context":{"requiredGranularScopes":["crm.objects.deals.read"]}}],"category":"MISSING_SCOPES"}`

// A read of the pipelines that HubSpot refuses (a revoked token, a missing
// scope) is no outage: refusing the delivery (503) would have HubSpot send
// it again for a while and then drop it, with the wins of the other deals
// it carries and no run to retry. The stage is taken as possibly won, the
// refusal logged, and the run started; its fetch judges the deal's stage
// with the same refused read and fails visibly, as unauthorized or
// rejected, naming the refusal: never unavailable, never a stage not won.
func TestResolveWhenThePipelinesLookUpIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault hubspotfake.Fault
		class connectors.Class
	}{
		{"401", hubspotfake.Fault{Status: http.StatusUnauthorized}, connectors.Unauthorized},
		{"403 MISSING_SCOPES", hubspotfake.Fault{Status: http.StatusForbidden, Body: missingScopes}, connectors.Unauthorized},
		{"400", hubspotfake.Fault{Status: http.StatusBadRequest}, connectors.Permanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, s := renewalsPortal(t, nil)
			var logs bytes.Buffer
			s.log = slog.New(slog.NewTextHandler(&logs, nil))
			now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
			s.Now = func() time.Time { return now }
			ctx := context.Background()
			reads := func() int { return f.Count(http.MethodGet, "/crm/pipelines/2026-03/deals") }

			// One delivery: deal 1 won in the default pipeline, deal 2
			// moved to a custom pipeline's stage never read.
			f.FailPipelines(tc.fault)
			evs := []model.DealEvent{
				{EventID: "e1", Account: "62515", Thin: true, Deal: model.Deal{ID: "1", Stage: "closedwon"}},
				{EventID: "e2", Account: "62515", Thin: true, Deal: model.Deal{ID: "2", Stage: "98765431"}},
			}
			if err := s.Resolve(ctx, evs); err != nil {
				t.Fatalf("Resolve with the look-up refused: %v; want the delivery taken", err)
			}
			if got := stagesOf(evs); !slices.Equal(got, []string{StageWon, StageWon}) {
				t.Errorf("stages %v; want both possibly won", got)
			}
			if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "refused") ||
				!strings.Contains(l, "deal_id=2") || !strings.Contains(l, "stage=98765431") {
				t.Errorf("the refusal is not logged with its deal and stage: %s", l)
			}
			// Within 30 s the refusal stands without asking again.
			now = now.Add(10 * time.Second)
			evs = stageEvents("11111111")
			if err := s.Resolve(ctx, evs); err != nil || evs[0].Deal.Stage != StageWon || reads() != 1 {
				t.Errorf("10 s later: %v, %s after %d reads", err, evs[0].Deal.Stage, reads())
			}

			// The run's fetch judges the deal's stage with the look-up
			// still refused.
			now = now.Add(time.Minute)
			f.PutDeal("62515", hubspotfake.Deal{ID: "2", Properties: hubspotfake.Props("dealname", "Renewal", "dealstage", "98765431")})
			f.FailPipelines(tc.fault)
			d, err := s.FetchDeal(ctx, "62515", "2")
			c, _ := connectors.Classify(err)
			if err == nil || d.Stage != "" || errors.Is(err, connectors.ErrCRMUnavailable) || c != tc.class ||
				!strings.Contains(err.Error(), `stage "98765431"`) || !strings.Contains(err.Error(), "refused") {
				t.Fatalf("the run's fetch with the look-up refused: %+v, %v (class %v); want a failure of class %v naming the refusal", d, err, c, tc.class)
			}
			if reads() != 2 {
				t.Errorf("%d reads of the pipelines, want 2", reads())
			}
			// Mended: the run retried reads the stage.
			if d, err := s.FetchDeal(ctx, "62515", "2"); err == nil {
				t.Errorf("within 30 s of the refusal: %+v, want it to stand", d)
			}
			now = now.Add(time.Minute)
			if d, err := s.FetchDeal(ctx, "62515", "2"); err != nil || d.Stage != StageWon {
				t.Errorf("after the refusal is mended: %+v, %v", d, err)
			}
		})
	}
}

// What the source logs of a delivery goes to the delivery's logger (the
// intake's, naming its component and the connection): through the
// Webhook for Parse (events of portals not listed dropped, a merge), and
// through the context for Resolve (the pipelines' read failing, a
// refused look-up). A portal whose pipelines were never read logs no
// stages_read_at (it was 0001-01-01). Without them, the source's own
// logger is used (the connection's, from connections.Build).
func TestDeliveryLinesGoToTheDeliverysLogger(t *testing.T) {
	f, s := renewalsPortal(t, nil)
	var own, delivery bytes.Buffer
	s.log = slog.New(slog.NewTextHandler(&own, nil))
	log := slog.New(slog.NewTextHandler(&delivery, nil)).With("component", "intake", "connection", "hs")
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }

	body := `[{"eventId":1,"subscriptionId":1,"portalId":62515,"appId":9,"occurredAt":1716900000001,"subscriptionType":"deal.merge","attemptNumber":0,"objectId":113,"primaryObjectId":113,"mergedObjectIds":[114]},
 {"eventId":2,"subscriptionId":1,"portalId":999,"appId":9,"occurredAt":1716900000001,"subscriptionType":"deal.creation","attemptNumber":0,"objectId":5}]`
	if _, err := s.Parse(&connectors.Webhook{Body: []byte(body), Log: log}); err != nil {
		t.Fatal(err)
	}
	f.FailPipelines(hubspotfake.Fault{Status: http.StatusServiceUnavailable})
	ctx := connectors.WithLogger(context.Background(), log)
	if err := s.Resolve(ctx, stageEvents("98765431")); !errors.Is(err, connectors.ErrCRMUnavailable) {
		t.Fatalf("Resolve with the pipelines API down: %v", err)
	}
	now = now.Add(time.Minute)
	f.FailPipelines(hubspotfake.Fault{Status: http.StatusUnauthorized})
	if err := s.Resolve(ctx, stageEvents("98765432")); err != nil {
		t.Fatalf("Resolve with the look-up refused: %v", err)
	}
	for _, want := range []string{
		`level=WARN msg="hubspot: deals were merged; a merge starts no run.`,
		`level=WARN msg="hubspot: events of portals the connection does not list dropped" component=intake connection=hs events=1`,
		`level=WARN msg="hubspot: reading the deal pipelines failed" component=intake connection=hs portal=62515 stage=98765431 retry_after=30s error=`,
		`level=ERROR msg="hubspot: the deal pipelines look-up was refused; the stage is taken as possibly won and the deal's run started, whose fetch fails until the refusal is mended (then retry it: dealsync runs retry)" component=intake connection=hs portal=62515`,
	} {
		if !strings.Contains(delivery.String(), want) {
			t.Errorf("the delivery's log lacks %s:\n%s", want, delivery.String())
		}
	}
	if strings.Contains(delivery.String(), "stages_read_at") || own.Len() != 0 {
		t.Errorf("a portal never read logged stages_read_at, or the source's own logger was used:\n%s\n%s", delivery.String(), own.String())
	}
	// Read once, then failing: its time is said. Without a delivery's
	// logger, the source's own is used.
	now = now.Add(time.Minute)
	if _, err := s.won(context.Background(), s.accounts["62515"], "77777777"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Minute)
	f.FailPipelines(hubspotfake.Fault{Status: http.StatusServiceUnavailable})
	_, _ = s.won(context.Background(), s.accounts["62515"], "88888888")
	if want := `msg="hubspot: reading the deal pipelines failed" portal=62515 stage=88888888 stages_read_at=2026-11-27T12:02:00.000Z`; !strings.Contains(own.String(), want) {
		t.Errorf("the source's own log lacks %s:\n%s", want, own.String())
	}
}
