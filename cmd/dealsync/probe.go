package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newProbeCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "probe URL",
		Args:  cobra.ExactArgs(1),
		Short: "GET a health check (/readyz, /healthz) and exit 0 on a 2xx answer: a container's healthcheck, in an image without a shell or curl",
		Long: `probe sends GET URL and exits 0 when the answer is 2xx, 1 otherwise (another
status, no answer within --timeout, a refused connection), printing the
status and the start of the body, which say why (an intake's /readyz:
"unavailable", the Temporal frontend does not answer; a worker's:
"starting", "stopping" or "unavailable"). It reads no config.

dealsync's image (distroless) has no shell, curl or wget: docker-compose.yml's
healthchecks of the intake and the workers run it, as
["CMD", "/dealsync", "probe", "http://127.0.0.1:8080/readyz"]. Give the
healthcheck's own timeout more than --timeout.

A redirect (3xx) is not followed: it is not ready (exit 1).

Exit status: 0 a 2xx answer, 1 any other outcome, 2 the URL is not http(s).`,
		Example: `  dealsync probe http://127.0.0.1:8080/readyz     # an intake (intake.listen)
  dealsync probe http://127.0.0.1:9090/readyz     # a worker (metrics.listen)`,
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := url.Parse(args[0])
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usageError(cmd, fmt.Errorf("%q: give an http:// or https:// URL, e.g. http://127.0.0.1:8080/readyz", args[0]))
			}
			if timeout <= 0 {
				return usageError(cmd, fmt.Errorf("--timeout %v: give a duration above 0", timeout))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
			if err != nil {
				return usageError(cmd, err)
			}
			// A redirect is not followed: a health check that answers
			// 3xx is not ready (a proxy's login page, say, would answer
			// 200 once followed).
			probeClient := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := probeClient.Do(req)
			if err != nil {
				return &exitError{code: 1, err: err} // Get "URL": what failed
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			said := resp.Status
			if body := strings.TrimSpace(string(b)); body != "" {
				said += " " + strings.Join(strings.Fields(body), " ")
			}
			if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode <= 399 && loc != "" {
				said += " (redirected to " + loc + ": not followed, give the health check's own URL)"
			}
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return &exitError{code: 1, err: fmt.Errorf("GET %s: %s", u, said)}
			}
			fmt.Fprintln(cmd.OutOrStdout(), said)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the answer (an intake's /readyz waits up to intake.start_timeout, a worker's 5 s)")
	return cmd
}
