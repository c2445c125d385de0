package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"velo/agent/access"
	"velo/agent/commands"
	"velo/agent/config"
	"velo/agent/telemetry"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/peterbourgon/ff/v3/ffcli"
)

type commandOptions struct {
	config   string
	operator string
	pwFile   string
	ttl      time.Duration
	wait     time.Duration
}

func commandCommand(s streams) *ffcli.Command {
	fs := newFlagSet("command")
	o := &commandOptions{}
	fs.StringVar(&o.config, "config", "/etc/velo/site.yaml", "the gateway's site `FILE`")
	fs.StringVar(&o.operator, "operator", "", "operator `NAME` (from the site config) (required)")
	fs.StringVar(&o.pwFile, "password-file", "", "`FILE` holding the operator's password (first line) (required)")
	fs.DurationVar(&o.ttl, "ttl", 2*time.Minute, "validity of the command (at most 10m)")
	fs.DurationVar(&o.wait, "wait", 60*time.Second, "how long to wait for the reply")
	c := &ffcli.Command{
		Name:       "command",
		ShortUsage: synopsis("velo command", fs, "VERB [key=value …]"),
		ShortHelp:  "sign a command, send it over MQTT and print the reply",
		LongHelp: `Sign a command with an operator's password, send it to a gateway over
MQTT and print the reply (JSON). Exit status 0 only when the reply's
status is "ok".

Verbs: preset/apply camera=ID preset=TOKEN (ptz-maintainer, admin);
config/reload (admin); state/refresh (any role). The broker, site and
gateway come from the site config (its broker, or its embedded broker).
To the embedded broker, velo command logs in as the operator with their
stream password (derived from the password, which never leaves). Only a
reply that echoes the request id and the SHA-256 of the command sent
counts.`,
		FlagSet: fs,
	}
	c.Exec = func(ctx context.Context, args []string) error {
		if len(args) == 0 || o.operator == "" || o.pwFile == "" {
			return usageError{msg: "command: usage: " + c.ShortUsage}
		}
		argMap, err := commandArgs(args[1:])
		if err != nil {
			return err
		}
		return o.send(ctx, s, args[0], argMap)
	}
	return c
}

// commandArgs parses a command's key=value arguments (nil for none).
func commandArgs(kvs []string) (map[string]string, error) {
	var argMap map[string]string
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{msg: fmt.Sprintf("command: %q is not key=value", kv)}
		}
		if argMap == nil {
			argMap = map[string]string{}
		}
		argMap[k] = v
	}
	return argMap, nil
}

// send signs verb with argMap, publishes it and waits for its reply.
func (o *commandOptions) send(ctx context.Context, s streams, verb string, argMap map[string]string) error {
	cfg, err := config.Load(o.config)
	if err != nil {
		return err
	}
	secret, err := readOperatorPassword(o.pwFile)
	if err != nil {
		return err
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	now := time.Now().UTC()
	c := commands.Command{RequestID: hex.EncodeToString(id), Operator: o.operator, Gateway: cfg.Gateway,
		IssuedAt: now.Format(time.RFC3339Nano), ExpiresAt: now.Add(o.ttl).Format(time.RFC3339Nano)}
	if argMap != nil {
		c.Args, _ = json.Marshal(argMap)
	}
	commands.Sign(secret, cfg.Site.ID, verb, &c)
	payload, _ := json.Marshal(c)

	root := telemetry.TopicRoot(cfg.Site.ID, cfg.Gateway)
	cl, err := o.connect(cfg, secret, "velo-command-"+c.RequestID)
	if err != nil {
		return err
	}
	defer cl.Disconnect(100)
	replies, err := publishCommand(cl, root+"cmd/"+verb, payload)
	if err != nil {
		return err
	}
	return o.awaitReply(ctx, s, verb, c.RequestID, payload, replies)
}

// connect logs in to the gateway's broker: the configured one with the
// config's TLS and credentials, or the embedded one as the operator, with
// their stream password (derived from the password: the password itself
// never goes to the broker). The stream password is that of the
// generation in the operator's credential file; right after a rotation
// the gateway may still hold the previous one until it reloads, so that
// one is tried next.
func (o *commandOptions) connect(cfg *config.Config, password, clientID string) (mqtt.Client, error) {
	opts := mqtt.NewClientOptions().AddBroker(cfg.BrokerURL()).SetClientID(clientID).
		SetCleanSession(true).SetConnectTimeout(10 * time.Second).SetAutoReconnect(false)
	if tc, err := cfg.TLSConfig(); err != nil {
		return nil, err
	} else if tc != nil {
		opts.SetTLSConfig(tc)
	}
	logins := []string{""}
	if cfg.Broker.URL == "" {
		logins = streamLogins(cfg, o.operator, password)
		opts.SetUsername(o.operator)
	} else if u, p := cfg.BrokerCredentials(); u != "" {
		opts.SetUsername(u).SetPassword(p)
	}
	var err error
	for _, secret := range logins {
		if secret != "" {
			opts.SetPassword(secret)
		}
		cl := mqtt.NewClient(opts)
		tok := cl.Connect()
		if tok.WaitTimeout(15*time.Second) && tok.Error() == nil {
			return cl, nil
		}
		err = tok.Error()
	}
	return nil, fmt.Errorf("command: broker %s: %v", cfg.BrokerURL(), err)
}

// streamLogins are the stream passwords an operator may log in to the
// embedded broker with: their credential's generation, then the one
// before it.
func streamLogins(cfg *config.Config, operator, password string) []string {
	gen := access.LegacyStreamGeneration
	if op := cfg.Operator(operator); op != nil && op.Credential() != nil {
		gen, _ = op.Credential().Stream()
	}
	logins := []string{access.StreamPassword(cfg.Site.ID, operator, password, gen)}
	if gen > 1 {
		logins = append(logins, access.StreamPassword(cfg.Site.ID, operator, password, gen-1))
	}
	return logins
}

// publishCommand subscribes to topic's replies, then publishes payload
// on topic. Only messages on exactly topic/reply are passed on.
func publishCommand(cl mqtt.Client, topic string, payload []byte) (<-chan []byte, error) {
	replies := make(chan []byte, 16)
	if tok := cl.Subscribe(topic+"/reply", 1, func(_ mqtt.Client, m mqtt.Message) {
		if m.Topic() == topic+"/reply" {
			replies <- append([]byte(nil), m.Payload()...)
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("command: subscribe: %v", tok.Error())
	}
	if tok := cl.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("command: publish: %v", tok.Error())
	}
	return replies, nil
}

// commandReply is what a gateway answers: the reply and the SHA-256 of
// the command it answers.
type commandReply struct {
	commands.Reply
	CommandSHA256 string `json:"command_sha256"`
}

// awaitReply prints the reply to the command sent (payload, request id):
// a reply counts only if it echoes the request id and the SHA-256 of
// exactly what was sent. Anything else on the reply topic is skipped.
func (o *commandOptions) awaitReply(ctx context.Context, s streams, verb, id string, payload []byte, replies <-chan []byte) error {
	sum := sha256.Sum256(payload)
	digest := hex.EncodeToString(sum[:])
	timeout := time.After(o.wait)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return fmt.Errorf("command: no reply to request %s within %v (is the gateway connected?)", id, o.wait)
		case b := <-replies:
			var r commandReply
			if json.Unmarshal(b, &r) != nil || r.RequestID != id || r.CommandSHA256 != digest {
				continue
			}
			fmt.Fprintln(s.stdout, string(b))
			if r.Status != "ok" {
				return fmt.Errorf("command %s: %s: %s", verb, r.Status, r.Reason)
			}
			return nil
		}
	}
}
