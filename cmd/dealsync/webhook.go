package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors/generic"
	"github.com/dealsync/dealsync/connectors/hubspot"
	"github.com/dealsync/dealsync/connectors/pipedrive"
	"github.com/dealsync/dealsync/connectors/salesforce"
	"github.com/dealsync/dealsync/examples"
	"github.com/dealsync/dealsync/intake"
	"github.com/dealsync/dealsync/internal/wording"
	"github.com/dealsync/dealsync/secret"
)

func newWebhookCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{Use: "webhook", Short: "Work with webhook deliveries"}
	var connection, target, msgID string
	var sample bool
	send := &cobra.Command{
		Use:   "send [--connection NAME] (FILE | --sample)",
		Short: "POST FILE to the intake as the connection's CRM would: signed or authenticated with the connection's own secret",
		Long: `send posts FILE (a delivery body: the generic source's event, a HubSpot
batch, a Pipedrive v2 webhook, a Salesforce Outbound Message) to the intake
the way the connection's CRM sends it, with the credentials of the config:

  generic     Standard Webhooks signature (webhook-id, webhook-timestamp,
              webhook-signature) with the source's secret
  hubspot     X-HubSpot-Signature-v3 over method, URL, body and timestamp,
              with the app's client secret (or the portal's, for a private
              app); the URL signed is the one the intake sees
              (intake.public_base_url when set)
  pipedrive   HTTP Basic auth with the webhook user and password (the
              source's, or those of the company in meta.company_id)
  salesforce  the endpoint token as the token query parameter, text/xml

--sample sends dealsync's built-in sample closed-won deal (the generic
source's event of examples/closed-won.json) instead of a file: the deal of
the README's tour, from wherever dealsync runs.

A delivery whose portal or company has no credential in the connection is
not sent (exit 2), rather than signed with an empty key. The mapping files
are not compiled: one that does not (being edited) does not stop a send.

Use it to replay a captured delivery against ` + "`dealsync dev`" + ` or a staging intake.`,
		Example: `  dealsync webhook send --connection demo examples/closed-won.json
  dealsync webhook send --connection demo --id msg_1 examples/closed-won.json   # again: a retried delivery
  dealsync webhook send --connection demo --sample                              # the same deal, built in
  dealsync webhook send --config dealsync.yaml --connection hubspot-eu captured-batch.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case sample && len(args) > 0:
				return fmt.Errorf("give FILE or --sample, not both")
			case sample:
				return nil
			case len(args) == 0:
				return fmt.Errorf("give the delivery's FILE, or --sample for dealsync's sample closed-won deal")
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			// Sending needs the connection's secret and the intake's
			// address, not its mapping: a mapping file being edited (one
			// that does not compile) does not stop it.
			cfg, err := g.load(config.WithDevDefaults(), config.WithoutMappings())
			if err != nil {
				return err
			}
			conn, ok := cfg.Connections[connection]
			if !ok {
				hint := ""
				if g.configPath == "" {
					hint = " (no --config was given: the built-in config of dealsync dev has only demo; give the file that defines it with --config)"
				}
				return &exitError{code: 2, err: fmt.Errorf("no connection %q in the config (defined: %s)%s",
					connection, wording.ListOrNone(slices.Sorted(maps.Keys(cfg.Connections))), hint)}
			}
			var body []byte
			if sample {
				if conn.Source.Type != "generic" {
					return &exitError{code: 2, err: fmt.Errorf("--sample is a generic source's event, and connection %q's source is %s: give a delivery of its CRM as FILE", connection, conn.Source.Type)}
				}
				body = examples.ClosedWon
			} else if body, err = os.ReadFile(args[0]); err != nil {
				if errors.Is(err, fs.ErrNotExist) && conn.Source.Type == "generic" && filepath.Base(args[0]) == "closed-won.json" {
					err = fmt.Errorf("%w (dealsync's sample closed-won deal is built in: --sample sends it)", err)
				}
				return &exitError{code: 2, err: err}
			}
			if target == "" {
				target = "http://" + config.DialAddr(cfg.Intake.Listen) + "/webhooks/" + connection
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, target, bytes.NewReader(body))
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			d := delivery{req: req, body: body, now: time.Now(), msgID: msgID, public: cfg.Intake.PublicBaseURL, conn: connection}
			if err := d.prepare(conn.Source); err != nil {
				var missing *noCredentialError
				if !errors.As(err, &missing) { // it names the connection
					err = fmt.Errorf("connection %q: %w", connection, err)
				}
				return &exitError{code: 2, err: err}
			}
			// The intake answers within its deadline (a CRM read and the
			// starts of a batch: intake.start_timeout four times, 20 s by
			// default); one that does not answer at all is not waited for
			// forever.
			wait := max(time.Minute, intake.MaxHandlerTime(cfg.Intake.StartTimeout)+10*time.Second)
			resp, err := (&http.Client{Timeout: wait}).Do(d.req)
			if err != nil {
				err = postError(err)
				if nothingListens(err) {
					// Most often the tour's second terminal before (or
					// after) the first one's dealsync dev.
					where := "intake.listen (DEALSYNC_INTAKE_LISTEN) of the config, " + config.DialAddr(cfg.Intake.Listen)
					if cmd.Flags().Changed("url") {
						where = "--url"
					}
					err = fmt.Errorf("%w (nothing listens there: is dealsync dev or dealsync serve running? this command posts to %s)", err, where)
				}
				return err
			}
			defer resp.Body.Close()
			reply, _ := io.ReadAll(resp.Body)
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n%s", resp.Proto, resp.Status, reply)
			if resp.StatusCode >= 300 {
				return &exitError{code: 1, err: nil}
			}
			return nil
		},
	}
	send.Flags().StringVar(&connection, "connection", "demo", "connection whose CRM the delivery comes from (its secret signs it)")
	send.Flags().StringVar(&target, "url", "", "intake URL (default http://<intake.listen>/webhooks/<connection>)")
	send.Flags().BoolVar(&sample, "sample", false, "send dealsync's built-in sample closed-won deal (examples/closed-won.json) instead of FILE; generic source only")
	send.Flags().StringVar(&msgID, "id", "", "generic source: webhook-id (default random; reuse one to simulate a retried delivery)")
	root.AddCommand(send)
	return root
}

// nothingListens reports whether err, a post's, is a connection the
// intake's address refused: not one a proxy (HTTP_PROXY, HTTPS_PROXY)
// refused, whose address is not the intake's.
func nothingListens(err error) bool {
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return false
	}
	for op := (*net.OpError)(nil); errors.As(err, &op); err = op.Err {
		if op.Op == "proxyconnect" {
			return false
		}
	}
	return true
}

// postError is the error of posting a delivery, with the values of the
// URL's query replaced by "REDACTED": http.Client.Do's *url.Error repeats
// the whole URL, and a Salesforce endpoint token is its token parameter.
func postError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return fmt.Errorf("posting the delivery: %w", err)
	}
	return fmt.Errorf("posting the delivery: %s %q: %w", ue.Op, redactQuery(ue.URL), ue.Err)
}

// redactQuery is rawURL with the value of every query parameter replaced
// by "REDACTED", or without its query when it does not parse.
func redactQuery(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		before, _, _ := strings.Cut(rawURL, "?")
		return before
	}
	if u.RawQuery == "" {
		return rawURL
	}
	q := u.Query()
	for key := range q {
		q[key] = []string{"REDACTED"}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// delivery is one request being made to look like its CRM's.
type delivery struct {
	req    *http.Request
	body   []byte
	now    time.Time
	msgID  string
	public string // intake.public_base_url
	conn   string // the connection's name
}

// noCredentialError says that the connection has no credential for the
// delivery's account: nothing to sign it with (never an empty key).
type noCredentialError struct {
	account, id, credential, conn, hint string
}

func (e *noCredentialError) Error() string {
	return fmt.Sprintf("%s %s has no %s in connection %q (%s)", e.account, e.id, e.credential, e.conn, e.hint)
}

func (d *delivery) prepare(src config.Component) error {
	h := d.req.Header
	switch spec := src.Spec.(type) {
	case *generic.Config:
		key, err := reveal("source.secret", spec.Secret)
		if err != nil {
			return err
		}
		if d.msgID == "" {
			var b [8]byte
			_, _ = rand.Read(b[:])
			d.msgID = "msg_" + hex.EncodeToString(b[:])
		}
		h.Set("Content-Type", "application/json")
		return generic.SignRequest(d.req, key, d.msgID, d.now, d.body)
	case *hubspot.Config:
		ref, name := spec.ClientSecret, "source.client_secret"
		if ref.IsZero() {
			// A private app's: the secret of the batch's portal.
			evs, err := hubspot.DecodeEvents(d.body)
			if err != nil {
				return err
			}
			portal := evs[0].PortalID.String()
			acc, listed := spec.Accounts[portal]
			if acc.ClientSecret.IsZero() {
				hint := "source.accounts has no portal " + portal
				if listed {
					hint = "source.accounts." + portal + ".client_secret is not set"
				}
				return &noCredentialError{account: "portal", id: portal, credential: "client_secret", conn: d.conn,
					hint: hint + ", nor source.client_secret for a public app"}
			}
			ref, name = acc.ClientSecret, "source.accounts."+portal+".client_secret"
		}
		key, err := reveal(name, ref)
		if err != nil {
			return err
		}
		// HubSpot signs the URL it calls: the one the intake rebuilds.
		uri := d.req.URL.String()
		if d.public != "" {
			uri = strings.TrimRight(d.public, "/") + d.req.URL.RequestURI()
		}
		h.Set("Content-Type", "application/json")
		hubspot.SignRequestV3(d.req, key, uri, d.body, d.now)
		return nil
	case *pipedrive.Config:
		user, pass, name := spec.WebhookUser, spec.WebhookPassword, "source.webhook_password"
		if user == "" {
			company, err := pipedrive.CompanyOf(d.body)
			if err != nil {
				return fmt.Errorf("not a Pipedrive webhook: %w", err)
			}
			acc, listed := spec.Accounts[company]
			user, pass, name = acc.WebhookUser, acc.WebhookPassword, "source.accounts."+company+".webhook_password"
			if user == "" {
				hint := "source.accounts has no company " + company
				if listed {
					hint = "source.accounts." + company + ".webhook_user is not set"
				}
				return &noCredentialError{account: "company", id: company, credential: "webhook_user", conn: d.conn,
					hint: hint + ", nor source.webhook_user"}
			}
		}
		p, err := reveal(name, pass)
		if err != nil {
			return err
		}
		h.Set("Content-Type", "application/json")
		d.req.SetBasicAuth(user, p)
		return nil
	case *salesforce.Config:
		if !spec.EndpointToken.IsZero() {
			tok, err := reveal("source.endpoint_token", spec.EndpointToken)
			if err != nil {
				return err
			}
			q := d.req.URL.Query()
			q.Set("token", tok)
			d.req.URL.RawQuery = q.Encode()
		}
		h.Set("Content-Type", "text/xml; charset=utf-8")
		h.Set("SOAPAction", `""`)
		return nil
	}
	return fmt.Errorf("source type %q: webhook send does not know how its CRM sends", src.Type)
}

// reveal resolves the secret set at key. An unset one is an error: it
// would sign with an empty key, or send an empty password.
func reveal(key string, s secret.Secret) (string, error) {
	if s.IsZero() {
		return "", fmt.Errorf("%s is not set", key)
	}
	v, err := s.Reveal()
	if err != nil {
		return "", fmt.Errorf("%s (%s): %w", key, s.Describe(), err)
	}
	return v, nil
}
