package hubspot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
)

// Stage look-up modes (Config.StageLookup).
const (
	// StageLookupPipelines asks the portal's pipelines API which stage ids
	// are won, for ids not listed in won_stages.
	StageLookupPipelines = "pipelines"
	// StageLookupNone trusts won_stages alone.
	StageLookupNone = "none"
)

// stagesTTL is how long a portal's stages are trusted before they are
// read again (an admin may change a stage's probability); after a failed
// read, the API is not asked again for stagesRetry (the stages read before
// serve meanwhile, and webhooks of unknown stages are judged undecided at
// once, refused or taken as possibly won as the failed read says, instead
// of each waiting on a slow or failing API).
const (
	stagesTTL   = 10 * time.Minute
	stagesRetry = 30 * time.Second
)

// pipelinesAnswer is GET /crm/pipelines/2026-03/deals (dealPipelinesPath).
type pipelinesAnswer struct {
	Results []struct {
		ID     string `json:"id"`
		Stages []struct {
			ID       string `json:"id"`
			Metadata struct {
				IsClosed    string `json:"isClosed"`
				Probability string `json:"probability"`
			} `json:"metadata"`
		} `json:"stages"`
	} `json:"results"`
}

// stageWon is HubSpot's own rule (the one behind hs_is_closed_won): a
// closed stage with probability 1 is closed won; closed with 0 is lost.
func stageWon(isClosed, probability string) bool {
	p, err := strconv.ParseFloat(probability, 64)
	return isClosed == "true" && err == nil && p >= 1
}

// stageCache is one portal's stage ids and whether each is won, as the
// pipelines API last said.
type stageCache struct {
	// turn is held during a read of the API (one read at a time); a
	// caller waits for it no longer than its context allows.
	turn    chan struct{}
	won     map[string]bool
	fetched time.Time
	// failed is the last failed read's error, retryAt when to try again.
	failed  error
	retryAt time.Time
}

// won reports whether a portal's stage id means closed won: listed in
// won_stages, or (with the pipelines look-up) a won stage of one of the
// portal's pipelines. Known stages are trusted for stagesTTL; an id the
// last read did not know (a stage created since) causes a new read, unless
// one started since this call (or its delivery) began, and is not won if
// that read does not know it either. When the API fails, the stages of the
// last read are used if they know the id; else the error wraps
// connectors.ErrCRMUnavailable when the API did not answer (a timeout, a
// 5xx, a 429), so that the delivery is refused and sent again rather than
// judged not won, and is a refusal (see undecided) when HubSpot refused
// the read (401, 403, another 4xx). A failed read is not repeated for
// stagesRetry.
func (s *Source) won(ctx context.Context, acc *account, stage string) (bool, error) {
	return s.wonSince(ctx, acc, stage, s.now())
}

// wonSince is won where a read started at or after asked counts as fresh
// for ids it does not know (Resolve: one read per delivery at most).
func (s *Source) wonSince(ctx context.Context, acc *account, stage string, asked time.Time) (bool, error) {
	switch {
	case stage == "":
		return false, nil
	case stage == StageWon || s.wonStages[stage] || acc.wonStages[stage]:
		return true, nil
	case s.stageLookup != StageLookupPipelines:
		return false, nil
	}
	c := &acc.stages
	select {
	case c.turn <- struct{}{}:
		defer func() { <-c.turn }()
	case <-ctx.Done():
		return false, unavailable(acc, stage, fmt.Errorf("waiting for a read of its pipelines: %w", ctx.Err()))
	}
	now := s.now()
	won, known := c.won[stage]
	if (known && now.Sub(c.fetched) < stagesTTL) || (!known && !c.fetched.Before(asked)) {
		return won, nil
	}
	err := c.failed
	if now.Before(c.retryAt) {
		err = &notAskedBefore{err: err, at: c.retryAt}
	} else {
		var fresh map[string]bool
		if fresh, err = s.readStages(ctx, acc); err == nil {
			c.won, c.fetched, c.failed = fresh, now, nil
			return fresh[stage], nil
		}
		if ctx.Err() != nil {
			// This caller's time ran out, not the API: the next caller
			// reads again.
			return false, unavailable(acc, stage, err)
		}
		c.failed, c.retryAt = err, now.Add(stagesRetry)
		attrs := []any{"portal", acc.id, "stage", stage}
		if !c.fetched.IsZero() {
			// Never read before: no time to give.
			attrs = append(attrs, "stages_read_at", c.fetched)
		}
		connectors.LoggerFrom(ctx, s.log).Warn("hubspot: reading the deal pipelines failed", append(attrs, "retry_after", stagesRetry, "error", err)...)
		err = &notAskedBefore{err: err, at: c.retryAt}
	}
	if known {
		return won, nil // the stages read before
	}
	return false, undecided(acc, stage, err)
}

// undecided is the error of a stage that could not be judged won or not
// because the read of the pipelines failed with err. When HubSpot did not
// answer (err is retried: a timeout, a 5xx, a 429), it is unavailable.
// When HubSpot refused the read (its credentials, its scopes: 401, 403,
// another 4xx), asking again will not help until a person acts: the error
// keeps err's class (connectors.Classify: Unauthorized or Permanent), so a
// run's fetch fails as CRMUnauthorized or CRMRejected, saying what to do,
// and Resolve takes the stage as possibly won (see there).
func undecided(acc *account, stage string, err error) error {
	if !refused(err) {
		return unavailable(acc, stage, err)
	}
	return fmt.Errorf("hubspot: cannot tell whether stage %q of portal %s is won: HubSpot refused the read of its deal pipelines "+
		"(renew the portal's token or grant the app the scopes named, or list the stage in won_stages; then retry the run): %w", stage, acc.id, err)
}

// unavailable is the error of a stage that could not be judged because
// HubSpot (or the caller's time) did not allow it now: the CRM
// unavailable, so the delivery is refused and sent again.
func unavailable(acc *account, stage string, err error) error {
	return fmt.Errorf("%w: is HubSpot stage %q of portal %s won? %w", connectors.ErrCRMUnavailable, stage, acc.id, err)
}

// refused reports whether err, a failed read of the pipelines, is HubSpot
// refusing it rather than not answering: a failure that asking again
// cannot mend.
func refused(err error) bool {
	c, _ := connectors.Classify(err)
	return c == connectors.Unauthorized || c == connectors.Permanent
}

// readStages reads every deal pipeline of the portal.
func (s *Source) readStages(ctx context.Context, acc *account) (map[string]bool, error) {
	var ans pipelinesAnswer
	if err := s.call(ctx, acc, "read deal pipelines", http.MethodGet, dealPipelinesPath, nil, &ans); err != nil {
		return nil, err
	}
	won := map[string]bool{}
	for _, p := range ans.Results {
		for _, st := range p.Stages {
			won[st.ID] = stageWon(st.Metadata.IsClosed, st.Metadata.Probability)
		}
	}
	if len(won) == 0 {
		return nil, errors.New("the portal has no deal pipeline stages")
	}
	return won, nil
}

// Resolve implements connectors.EventResolver: a stage change to a stage
// id that is a won stage of the portal's pipelines is reported as StageWon,
// like one listed in won_stages (the id as sent stays in
// Deal.Raw["dealstage"]).
//
// A stage that cannot be judged because HubSpot did not answer fails the
// delivery (connectors.ErrCRMUnavailable: the intake answers 503 and
// HubSpot sends it again). One that cannot be judged because HubSpot
// refused the read of the pipelines (a revoked token, a missing scope) is
// taken as possibly won and reported as StageWon, and the refusal logged:
// HubSpot would send the delivery again for a while and then drop it, and
// with it the wins of the other deals it carries, with no run left to
// retry. The run started reads the deal and judges its stage itself: with
// the refusal still there, its fetch fails (CRMUnauthorized or
// CRMRejected, naming the refusal), where the operator sees it and `runs
// retry` takes it up once it is mended; a deal not won then ends DealNotWon.
func (s *Source) Resolve(ctx context.Context, events []model.DealEvent) error {
	asked := s.now()
	for i := range events {
		ev := &events[i]
		if ev.Deal.Stage == "" || ev.Deal.Stage == StageWon {
			continue
		}
		acc, err := s.account(ev.Account)
		if err != nil {
			return err
		}
		won, err := s.wonSince(ctx, acc, ev.Deal.Stage, asked)
		if err != nil {
			if errors.Is(err, connectors.ErrCRMUnavailable) || !refused(err) {
				return fmt.Errorf("event %s: %w", ev.EventID, err)
			}
			connectors.LoggerFrom(ctx, s.log).Error("hubspot: the deal pipelines look-up was refused; the stage is taken as possibly won and the deal's run started, "+
				"whose fetch fails until the refusal is mended (then retry it: dealsync runs retry)",
				"portal", acc.id, "event_id", ev.EventID, "deal_id", ev.Deal.ID, "stage", ev.Deal.Stage, "error", err)
			won = true
		}
		if won {
			ev.Deal.Stage = StageWon
		}
	}
	return nil
}

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// notAskedBefore is the failure of the last read of the pipelines, kept
// until at, when it is asked again: the intake's 503 says when
// (connectors.RetryAter).
type notAskedBefore struct {
	err error
	at  time.Time
}

func (e *notAskedBefore) Error() string {
	return fmt.Sprintf("%v (not asked again before %s)", e.err, e.at.Format(time.RFC3339))
}

func (e *notAskedBefore) Unwrap() error      { return e.err }
func (e *notAskedBefore) RetryAt() time.Time { return e.at }
