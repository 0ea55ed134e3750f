package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/dealsync/dealsync/app"
	"github.com/dealsync/dealsync/connectors/sandbox"
	"github.com/dealsync/dealsync/payloadcodec"
	"github.com/dealsync/dealsync/rerun"
	"github.com/dealsync/dealsync/workflows"
)

// encryptedCustomer is the customer name of the encryption test's deals:
// nowhere else, so finding its bytes in a file means the deal is there.
const encryptedCustomer = "Quillfeather Zymurgy Partners"

// TestPayloadEncryption runs a deal through dev with temporal.encryption
// on and with it off, each on its own SQLite files: encrypted, the
// customer's name is in none of Temporal's files, the invoice is made,
// a failure still reads in runs list, runs retry re-runs it, a client
// without the key cannot read the result, and dev's codec endpoint
// decodes a payload of the history for the Web UI. Plaintext, the name
// is in the files (so the check can find it).
func TestPayloadEncryption(t *testing.T) {
	for _, encrypted := range []bool{true, false} {
		name := map[bool]string{true: "encrypted", false: "plaintext"}[encrypted]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			env := map[string]string{}
			if encrypted {
				env["DEALSYNC_TEMPORAL_ENCRYPTION_KEY_ID"] = "k2"
				t.Setenv("TEST_DEALSYNC_KEY_1", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)))
				t.Setenv("TEST_DEALSYNC_KEY_2", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)))
			}
			cfgFile := filepath.Join(dir, "dealsync.yaml")
			yaml := "{}\n"
			if encrypted {
				yaml = "temporal:\n  encryption:\n    keys:\n      k1: env:TEST_DEALSYNC_KEY_1\n      k2: env:TEST_DEALSYNC_KEY_2\n"
			}
			if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			s := startStack(t, stackOptions{dataDir: filepath.Join(dir, "data"), configFile: cfgFile, env: env})
			if got := s.CodecURL != ""; got != encrypted {
				t.Fatalf("codec endpoint %q with encryption %v", s.CodecURL, encrypted)
			}
			named := func(deal map[string]any) {
				deal["company"].(map[string]any)["name"] = encryptedCustomer
			}

			// A deal invoiced.
			out := s.invoiceDeal(t, delivery{body: event("enc-ok", "D-ENC-OK", named)})
			if out.InvoiceID == "" || s.invoicesFor("D-ENC-OK") != 1 {
				t.Fatalf("run result %+v, %d invoices; want one invoice", out, s.invoicesFor("D-ENC-OK"))
			}

			// A deal whose invoice the ERP refuses: the failure reads in
			// runs list, and runs retry makes its invoice.
			s.Sandbox.SetFaults(sandbox.Faults{Script: []int{http.StatusUnprocessableEntity}})
			failedID := s.deliverTimes(t, delivery{body: event("enc-fail", "D-ENC-FAIL", named)}, 1)
			var appErr *temporal.ApplicationError
			if err := s.waitRun(t, failedID, nil); !errors.As(err, &appErr) {
				t.Fatalf("run %s: %v, want it failed by the ERP's 422", failedID, err)
			}
			s.countRuns(t, `DealId = "D-ENC-FAIL" AND ExecutionStatus = "Failed"`, 1)
			listed, _, err := rerun.List(context.Background(), s.Client, rerun.ListOptions{TaskQueue: s.cfg.Temporal.TaskQueue, Query: `DealId = "D-ENC-FAIL"`, Limit: 5})
			if err != nil || len(listed) != 1 || !strings.Contains(listed[0].FailureMessage, "422") || listed[0].FailureReadError != "" {
				t.Fatalf("runs list: %+v, %v; want the failed run with the ERP's 422", listed, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			results, err := rerun.Failed(ctx, s.Client, s.Connections, app.Starter(s.cfg, s.Client, false),
				rerun.Options{TaskQueue: s.cfg.Temporal.TaskQueue, Query: `DealId = "D-ENC-FAIL"`})
			if err != nil || len(results) != 1 || results[0].NewRun == "" {
				t.Fatalf("runs retry: %+v, %v", results, err)
			}
			var retried workflows.InvoiceDealResult
			if err := s.Client.GetWorkflow(ctx, failedID, results[0].NewRun).Get(ctx, &retried); err != nil || s.invoicesFor("D-ENC-FAIL") != 1 {
				t.Fatalf("the retried run: %v, %d invoices", err, s.invoicesFor("D-ENC-FAIL"))
			}

			// What Temporal stores, read without the key.
			raw, err := client.Dial(client.Options{HostPort: s.Temporal.FrontendAddress(), Namespace: s.cfg.Temporal.Namespace, Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			okID := workflows.WorkflowID("demo", "D-ENC-OK")
			it := raw.GetWorkflowHistory(ctx, okID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			first, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			input := first.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
			var plainOut workflows.InvoiceDealResult
			readErr := raw.GetWorkflow(ctx, okID, "").Get(ctx, &plainOut)
			if !encrypted {
				if !bytes.Contains(input.GetData(), []byte(encryptedCustomer)) || readErr != nil {
					t.Fatalf("plaintext run: input %q, result read %v", input.GetData(), readErr)
				}
			} else {
				if string(input.GetMetadata()["encoding"]) != payloadcodec.Encoding || string(input.GetMetadata()[payloadcodec.MetadataKeyID]) != "k2" ||
					bytes.Contains(input.GetData(), []byte(encryptedCustomer)) {
					t.Fatalf("stored input %v: not encrypted with k2", input.GetMetadata())
				}
				if readErr == nil {
					t.Fatal("a client without the key read the run's result")
				}
				// The Web UI's call of the codec endpoint.
				body, err := json.Marshal(map[string]any{"payloads": []any{map[string]any{
					"metadata": map[string]string{
						"encoding":                 base64.StdEncoding.EncodeToString(input.GetMetadata()["encoding"]),
						payloadcodec.MetadataKeyID: base64.StdEncoding.EncodeToString(input.GetMetadata()[payloadcodec.MetadataKeyID]),
					},
					"data": base64.StdEncoding.EncodeToString(input.GetData()),
				}}})
				if err != nil {
					t.Fatal(err)
				}
				resp, err := http.Post(s.CodecURL+"/decode", "application/json", bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				decoded, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var answer struct {
					Payloads []struct {
						Data []byte `json:"data"`
					} `json:"payloads"`
				}
				if err := json.Unmarshal(decoded, &answer); err != nil || resp.StatusCode != 200 || len(answer.Payloads) != 1 ||
					!bytes.Contains(answer.Payloads[0].Data, []byte(encryptedCustomer)) {
					t.Fatalf("codec endpoint: %d %s (%v); want the input with the customer's name", resp.StatusCode, decoded, err)
				}
			}

			// Temporal's SQLite files, once written back at stop.
			s.Close()
			files, err := filepath.Glob(filepath.Join(dir, "data", "temporal*"))
			if err != nil || len(files) < 2 {
				t.Fatalf("Temporal's files: %v, %v", files, err)
			}
			var holding []string
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(b, []byte(encryptedCustomer)) {
					holding = append(holding, filepath.Base(f))
				}
			}
			if encrypted && len(holding) > 0 {
				t.Fatalf("the customer's name is in plaintext in %v", holding)
			}
			if !encrypted && len(holding) == 0 {
				t.Fatalf("the customer's name is in none of %v without encryption: the check cannot find it", files)
			}
		})
	}
}
