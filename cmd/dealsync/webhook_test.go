package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connections"
	"github.com/dealsync/dealsync/connectors"
	"github.com/dealsync/dealsync/model"
)

// recordingStarter stands for Temporal: it records the events the intake
// would start runs for.
type recordingStarter struct {
	mu     sync.Mutex
	events []string // connection/deal
}

func (r *recordingStarter) Start(_ context.Context, conn *connections.Connection, ev model.DealEvent) (connectors.EventResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, conn.Name+"/"+ev.Deal.ID)
	return connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID, WorkflowID: "wf", RunID: "run"}, nil
}

func (r *recordingStarter) Notify(_ context.Context, _ *connections.Connection, ev model.DealEvent) (connectors.EventResult, bool, error) {
	return connectors.EventResult{EventID: ev.EventID, DealID: ev.Deal.ID}, false, nil
}

func (r *recordingStarter) Ready(context.Context) error { return nil }

// `webhook send` makes a delivery look like each CRM's: the real intake,
// with the real sources built from the config, verifies and accepts it;
// with another secret in the config, the intake refuses it (401).
func TestWebhookSendAsEachCRM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const org = "00D5w000004qGTOEA2"
	configFor := func(secret string) string {
		return fmt.Sprintf(`
log: {level: error}
intake: {public_base_url: "https://hooks.example.com"}
connections:
  shop:
    source: {type: generic, secret: %q}
    target: sandbox
  hs:
    target: sandbox
    trigger: {won_stages: [closedwon]}
    source:
      type: hubspot
      client_secret: hs-%[2]s
      base_url: http://127.0.0.1:9
      accounts:
        "62515": {access_token: pat-na1-62515}
  hs-private:
    target: sandbox
    trigger: {won_stages: [closedwon]}
    source:
      type: hubspot
      base_url: http://127.0.0.1:9
      accounts:
        "77777": {access_token: pat-na1-77777, client_secret: portal-%[2]s}
  pd:
    target: sandbox
    trigger: {won_stages: [won]}
    source:
      type: pipedrive
      base_url: http://127.0.0.1:9
      accounts:
        "7654321": {api_token: pd-token, webhook_user: dealsync, webhook_password: pd-%[2]s}
  sf:
    target: sandbox
    trigger: {won_stages: [Closed Won]}
    source:
      type: salesforce
      endpoint_token: sf-%[2]s
      accounts:
        %[3]s: {instance_url: "http://127.0.0.1:9", client_id: c, client_secret: s}
`, "whsec_"+secretB64(secret), secret, org)
	}
	good := writeConfig(t, configFor("right"))
	cfg, err := config.Load(good, config.WithDevDefaults())
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	set, err := app.BuildConnections(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	starter := &recordingStarter{}
	srv := httptest.NewServer(app.IntakeHandler(cfg, set, starter, logger))
	defer srv.Close()

	dir := t.TempDir()
	file := func(name, body string) string { return writeFile(t, filepath.Join(dir, name), body) }
	ms := time.Now().UnixMilli()
	deliveries := map[string]string{
		"shop":       file("generic.json", `{"event_id":"e1","deal":{"id":"G-1","stage":"closed_won","previous_stage":"proposal","amount":"10.00","currency":"EUR"}}`),
		"hs":         file("hubspot.json", fmt.Sprintf(`[{"eventId":101,"subscriptionId":1,"portalId":62515,"appId":9,"occurredAt":%d,"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":4711,"propertyName":"dealstage","propertyValue":"closedwon","changeSource":"CRM_UI"}]`, ms)),
		"hs-private": file("hubspot-private.json", fmt.Sprintf(`[{"eventId":102,"subscriptionId":1,"portalId":77777,"appId":9,"occurredAt":%d,"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":4712,"propertyName":"dealstage","propertyValue":"closedwon","changeSource":"CRM_UI"}]`, ms)),
		"pd":         file("pipedrive.json", `{"data":{"id":88,"status":"won","stage_id":4,"pipeline_id":1,"value":100,"currency":"EUR","org_id":5,"title":"Deal 88"},"previous":{"status":"open"},"meta":{"action":"change","entity":"deal","entity_id":"88","id":"m-1","company_id":7654321,"correlation_id":"c-1","timestamp":"2026-11-27T10:00:00.000Z","type":"general","user_id":"1","version":"2.0","webhook_id":"1","attempt":1}}`),
		"sf": file("salesforce.xml", `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>`+org+`</OrganizationId>
   <ActionId>04k5w000000TSwMAAW</ActionId>
   <Notification>
    <Id>04l5w00005286h0001</Id>
    <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0065w00001Abc01AAA</sf:Id>
     <sf:IsWon>true</sf:IsWon>
     <sf:LastModifiedDate>2026-11-27T10:00:00.000Z</sf:LastModifiedDate>
     <sf:StageName>Closed Won</sf:StageName>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>
`),
	}
	for conn, body := range deliveries {
		out, err := runOut(ctx, "--config", good, "webhook", "send", "--connection", conn, "--url", srv.URL+"/webhooks/"+conn, body)
		if err != nil || !strings.Contains(out, " 20") {
			t.Errorf("%s: %v\n%s", conn, err, out)
		}
	}
	starter.mu.Lock()
	got := strings.Join(starter.events, " ")
	starter.mu.Unlock()
	for _, want := range []string{"shop/G-1", "hs/4711", "hs-private/4712", "pd/88", "sf/0065w00001Abc01AAA"} {
		if !strings.Contains(got, want) {
			t.Errorf("no run for %s (runs: %s)", want, got)
		}
	}

	// The same deliveries made with other secrets are refused.
	wrong := writeConfig(t, configFor("wrong"))
	for conn, body := range deliveries {
		out, err := runOut(ctx, "--config", wrong, "webhook", "send", "--connection", conn, "--url", srv.URL+"/webhooks/"+conn, body)
		if exitCode(err) != 1 || !strings.Contains(out, "401") {
			t.Errorf("%s with the wrong secret: exit %d\n%s", conn, exitCode(err), out)
		}
	}
}

// A delivery whose account has no credential in the config is not signed
// with an empty key (nor sent with an empty password): the command exits 2
// naming the account, the credential and the connection, and posts nothing.
func TestWebhookSendRefusesToSignWithoutACredential(t *testing.T) {
	ctx := context.Background()
	cfg := writeConfig(t, `
log: {level: error}
targets:
  other: {type: http, base_url: "https://erp.example.com/api"}
connections:
  hs-private:
    target: sandbox
    trigger: {won_stages: [closedwon]}
    source:
      type: hubspot
      base_url: http://127.0.0.1:9
      accounts:
        "77777": {access_token: pat-na1-77777, client_secret: portal-secret}
        "66666": {access_token: pat-na1-66666}
  pd:
    target: sandbox
    trigger: {won_stages: [won]}
    source:
      type: pipedrive
      base_url: http://127.0.0.1:9
      accounts:
        "7654321": {api_token: pd-token, webhook_user: dealsync, webhook_password: pd-secret}
  pd-no-password:
    target: other # one company on two connections: a target each
    trigger: {won_stages: [won]}
    source:
      type: pipedrive
      base_url: http://127.0.0.1:9
      webhook_user: dealsync
      accounts:
        "7654321": {api_token: pd-token}
`)
	// A server that counts what reaches it: nothing must.
	var reached atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	defer srv.Close()
	dir := t.TempDir()
	hubspotFrom := func(portal string) string {
		return writeFile(t, filepath.Join(dir, "hs-"+portal+".json"), `[{"eventId":1,"subscriptionId":1,"portalId":`+portal+
			`,"appId":9,"occurredAt":1,"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":1,"propertyName":"dealstage","propertyValue":"closedwon"}]`)
	}
	pipedriveFrom := func(company string) string {
		return writeFile(t, filepath.Join(dir, "pd-"+company+".json"), `{"data":{"id":88,"status":"won"},"previous":{"status":"open"},"meta":{"action":"change","entity":"deal","entity_id":"88","id":"m-1","company_id":`+company+`,"version":"2.0"}}`)
	}
	for _, c := range []struct {
		name, conn, body, want string
	}{
		{"portal not in accounts", "hs-private", hubspotFrom("77778"),
			`portal 77778 has no client_secret in connection "hs-private" (source.accounts has no portal 77778, nor source.client_secret for a public app)`},
		{"portal without its secret", "hs-private", hubspotFrom("66666"),
			`portal 66666 has no client_secret in connection "hs-private" (source.accounts.66666.client_secret is not set`},
		{"company not in accounts", "pd", pipedriveFrom("1111111"),
			`company 1111111 has no webhook_user in connection "pd" (source.accounts has no company 1111111, nor source.webhook_user)`},
		{"user without password", "pd-no-password", pipedriveFrom("7654321"),
			`connection "pd-no-password": source.webhook_password is not set`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := runOut(ctx, "--config", cfg, "webhook", "send", "--connection", c.conn, "--url", srv.URL+"/webhooks/"+c.conn, c.body)
			if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("exit %d, %v\n%s\nwant exit 2 saying %s", exitCode(err), err, out, c.want)
			}
		})
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("%d deliveries were posted", n)
	}
}

// A delivery that cannot be posted says what failed without the Salesforce
// endpoint token that was in the URL's query.
func TestWebhookSendErrorDoesNotShowTheEndpointToken(t *testing.T) {
	const token = "TOPSECRET-sf-endpoint-token"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	cfg := writeConfig(t, fmt.Sprintf(`
log: {level: error}
connections:
  salesforce-acme:
    target: sandbox
    trigger: {won_stages: [Closed Won]}
    source:
      type: salesforce
      endpoint_token: %s
      accounts:
        00D5w000004qGTOEA2: {instance_url: "http://127.0.0.1:9", client_id: c, client_secret: s}
`, token))
	body := writeFile(t, filepath.Join(t.TempDir(), "salesforce.xml"), "<soapenv:Envelope/>")
	url := "http://" + closed + "/webhooks/salesforce-acme"
	out, err := runOut(context.Background(), "--config", cfg, "webhook", "send", "--connection", "salesforce-acme", "--url", url, body)
	if err == nil {
		t.Fatalf("posting to a closed port succeeded:\n%s", out)
	}
	if strings.Contains(err.Error(), token) || strings.Contains(out, token) {
		t.Errorf("the endpoint token is shown:\n%v\n%s", err, out)
	}
	for _, want := range []string{url + "?token=REDACTED", "dial tcp " + closed} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
}

// secretB64 is a Standard Webhooks secret's base64 part for a word.
func secretB64(word string) string {
	return base64.StdEncoding.EncodeToString([]byte("dealsync-test-" + word + "-secret"))
}
