// Package payloadcodec encrypts the payloads dealsync stores in Temporal
// (workflow and activity inputs and results, signals, memos, failure
// details) with AES-256-GCM: a Temporal payload codec, the gRPC client
// interceptor that applies it to everything a client sends and receives,
// and the HTTP codec endpoint the Temporal Web UI decodes them through.
//
// An encrypted payload is the original payload (its metadata and data,
// protobuf-serialized) sealed with a random 12-byte nonce; its metadata
// says encoding binary/encrypted and the id of the key, which is bound to
// the ciphertext as additional data. A payload without that encoding
// (written before encryption was turned on) is passed through as it is.
// Search attributes are never encoded (Temporal indexes them).
package payloadcodec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const (
	// Encoding is the metadata encoding of an encrypted payload.
	Encoding = "binary/encrypted"
	// MetadataKeyID is the metadata key naming the payload's key id.
	MetadataKeyID = "encryption-key-id"
	// KeysSetting is the setting that holds the keys, named by errors.
	KeysSetting = "temporal.encryption.keys"
)

// Codec is the AES-256-GCM payload codec (a converter.PayloadCodec).
type Codec struct {
	keyID string
	aeads map[string]cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New is the codec of keys (each 32 bytes, by id) that encrypts with the
// key keyID; keyID "" encrypts nothing and still decrypts with keys.
func New(keyID string, keys map[string][]byte) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	c := &Codec{keyID: keyID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for id, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("%s.%s: %d bytes, not the 32 of an AES-256 key", KeysSetting, id, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", KeysSetting, id, err)
		}
		if c.aeads[id], err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("%s.%s: %w", KeysSetting, id, err)
		}
	}
	if _, ok := c.aeads[keyID]; keyID != "" && !ok {
		return nil, fmt.Errorf("key id %q is not one of %s", keyID, KeysSetting)
	}
	return c, nil
}

// Encode encrypts each payload with the codec's key id (none without one).
// A payload encrypted already is left as it is: the SDK retries a call
// (the service unavailable, say) with the request the interceptor
// encrypted in place, and encrypting it again would store a payload that
// decrypts to a still encrypted one, which no worker or reader decodes.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if c.keyID == "" {
		return payloads, nil
	}
	aead := c.aeads[c.keyID]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if encrypted(p) {
			out[i] = p
			continue
		}
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encrypting a payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("encrypting a payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataKeyID:              []byte(c.keyID),
			},
			Data: aead.Seal(nonce, nonce, plain, []byte(c.keyID)),
		}
	}
	return out, nil
}

// Decode decrypts each encrypted payload with the key its metadata names;
// others are returned as they are.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if !encrypted(p) {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := c.aeads[id]
		if !ok {
			return nil, fmt.Errorf("payload encrypted with key id %q, which %s does not have (have: %s): add that key to decrypt it",
				id, KeysSetting, c.ids())
		}
		data := p.GetData()
		if len(data) < aead.NonceSize() {
			return nil, fmt.Errorf("payload encrypted with key id %q is too short to be one", id)
		}
		plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], []byte(id))
		if err != nil {
			return nil, fmt.Errorf("payload encrypted with key id %q does not decrypt with %s.%s: altered, or another key of that id", id, KeysSetting, id)
		}
		var dec commonpb.Payload
		if err := proto.Unmarshal(plain, &dec); err != nil {
			return nil, fmt.Errorf("payload encrypted with key id %q: %w", id, err)
		}
		out[i] = &dec
	}
	return out, nil
}

// encrypted reports whether p is a payload this codec encrypted.
func encrypted(p *commonpb.Payload) bool {
	return string(p.GetMetadata()[converter.MetadataEncoding]) == Encoding
}

// ids are the codec's key ids, sorted, as an error names them.
func (c *Codec) ids() string {
	return fmt.Sprint(slices.Sorted(maps.Keys(c.aeads)))
}

// Interceptor is the gRPC client interceptor that encodes every payload a
// Temporal client sends and decodes every payload it receives, search
// attributes excepted. On a client's connection it encrypts for its
// workers too, and decodes what is read raw from the service (histories
// read with GetWorkflowHistory, memos of DescribeWorkflowExecution), which
// a data converter alone would leave encrypted.
//
// A payload it cannot decode (a key id it lacks, an altered ciphertext)
// fails the call with FailedPrecondition: the SDK retries an error of no
// gRPC code (Unknown) until the call's deadline, which hid the message
// behind "context deadline exceeded" and had a worker's poll take, and
// lose, a task on each try; FailedPrecondition is not retried, nor ends a
// worker (its poller logs it and polls again).
func (c *Codec) Interceptor() grpc.UnaryClientInterceptor {
	i, err := converter.NewPayloadCodecGRPCClientInterceptor(converter.PayloadCodecGRPCClientInterceptorOptions{Codecs: []converter.PayloadCodec{grpcCodec{c}}})
	if err != nil {
		// It only fails on options it does not take.
		panic(err)
	}
	return i
}

// grpcCodec is the codec whose decode failures are gRPC statuses the SDK
// does not retry (see Interceptor).
type grpcCodec struct{ *Codec }

func (g grpcCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out, err := g.Codec.Decode(payloads)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return out, nil
}

// Handler serves the codec endpoint of the Temporal Web UI under prefix
// (POST <prefix>/decode and <prefix>/encode with {"payloads": [...]}),
// answering the CORS preflight of the pages of origins. It hands out
// plaintext to whoever reaches it, but a browser page of another origin
// is refused (403) rather than only kept from reading the answer: a page
// that reaches it as its own origin through DNS rebinding sends its
// Origin too.
func (c *Codec) Handler(prefix string, origins []string) http.Handler {
	h := converter.NewPayloadCodecHTTPHandler(c)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		if o := r.Header.Get("Origin"); o != "" {
			if !slices.Contains(origins, o) {
				http.Error(w, "origin "+o+" is not one the codec endpoint answers (temporal.encryption.codec_origins)", http.StatusForbidden)
				return
			}
			w.Header().Set("Access-Control-Allow-Origin", o)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization, Authorization-Extras")
		}
		if r.URL.Path != prefix+"/decode" && r.URL.Path != prefix+"/encode" {
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4<<20)
		h.ServeHTTP(w, r)
	})
}
