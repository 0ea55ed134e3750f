package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dealsync/dealsync/config"
	"github.com/dealsync/dealsync/connectors/generic"
)

func newWebhookCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{Use: "webhook", Short: "Work with webhook deliveries"}
	var connection, url, msgID string
	send := &cobra.Command{
		Use:   "send --connection NAME FILE",
		Short: "Sign FILE with the connection's secret (Standard Webhooks) and POST it to the intake",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.load(config.WithDevDefaults())
			if err != nil {
				return err
			}
			conn, ok := cfg.Connections[connection]
			if !ok {
				return &exitError{code: 2, err: fmt.Errorf("no connection %q in the config", connection)}
			}
			spec, ok := conn.Source.Spec.(*generic.Config)
			if !ok {
				return &exitError{code: 2, err: fmt.Errorf("connection %q has source type %q: webhook send signs generic deliveries only", connection, conn.Source.Type)}
			}
			key, err := spec.Secret.Reveal()
			if err != nil {
				return err
			}
			body, err := os.ReadFile(args[0])
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if url == "" {
				url = "http://" + config.DialAddr(cfg.Intake.Listen) + "/webhooks/" + connection
			}
			if msgID == "" {
				var b [8]byte
				_, _ = rand.Read(b[:])
				msgID = "msg_" + hex.EncodeToString(b[:])
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			if err := generic.SignRequest(req, key, msgID, time.Now(), body); err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("posting to %s: %w", url, err)
			}
			defer resp.Body.Close()
			reply, _ := io.ReadAll(resp.Body)
			fmt.Printf("%s %s\n%s", resp.Proto, resp.Status, reply)
			if resp.StatusCode >= 300 {
				return &exitError{code: 1, err: nil}
			}
			return nil
		},
	}
	send.Flags().StringVar(&connection, "connection", "demo", "connection whose secret signs the delivery")
	send.Flags().StringVar(&url, "url", "", "intake URL (default http://<intake.listen>/webhooks/<connection>)")
	send.Flags().StringVar(&msgID, "id", "", "webhook-id (default random; reuse one to simulate a retried delivery)")
	root.AddCommand(send)
	return root
}
