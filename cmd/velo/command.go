package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"velo/agent"
)

const commandHelp = `velo command: sign a command with an operator's password, send it to a
gateway over MQTT and print the reply (JSON). Exit status 0 only when the
reply's status is "ok".

  velo command --config SITE.yaml --operator NAME --password-file F VERB [key=value …]

Verbs: preset/apply camera=ID preset=TOKEN (ptz-maintainer, admin);
config/reload (admin); state/refresh (any role). The broker, site and
gateway come from the site config (its broker, or its embedded broker).`

func cmdCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("command", stderr, commandHelp)
	cfgPath := fs.String("config", "/etc/velo/site.yaml", "the gateway's site config")
	operator := fs.String("operator", "", "operator name (from the site config)")
	pwFile := fs.String("password-file", "", "file holding the operator's password (first line)")
	ttl := fs.Duration("ttl", 2*time.Minute, "validity of the command (at most 10m)")
	wait := fs.Duration("wait", 60*time.Second, "how long to wait for the reply")
	if err := fs.Parse(args); err != nil {
		if err.Error() == "flag: help requested" {
			return errHelp
		}
		return usageError{err.Error()}
	}
	rest := fs.Args()
	if len(rest) == 0 || *operator == "" || *pwFile == "" {
		return usageError{"command: usage: velo command --config SITE.yaml --operator NAME --password-file F VERB [key=value …]"}
	}
	verb := rest[0]
	var argMap map[string]string
	for _, kv := range rest[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError{fmt.Sprintf("command: %q is not key=value", kv)}
		}
		if argMap == nil {
			argMap = map[string]string{}
		}
		argMap[k] = v
	}
	cfg, err := agent.Load(*cfgPath)
	if err != nil {
		return err
	}
	secret, err := readOperatorPassword(*pwFile)
	if err != nil {
		return err
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	now := time.Now().UTC()
	c := agent.Command{RequestID: hex.EncodeToString(id), Operator: *operator, Gateway: cfg.Gateway,
		IssuedAt: now.Format(time.RFC3339Nano), ExpiresAt: now.Add(*ttl).Format(time.RFC3339Nano)}
	if argMap != nil {
		c.Args, _ = json.Marshal(argMap)
	}
	agent.SignCommand(secret, cfg.Site.ID, verb, &c)
	payload, _ := json.Marshal(c)

	root := agent.TopicRoot(cfg.Site.ID, cfg.Gateway)
	opts := mqtt.NewClientOptions().AddBroker(cfg.BrokerURL()).SetClientID("velo-command-" + c.RequestID).
		SetCleanSession(true).SetConnectTimeout(10 * time.Second)
	if tc, err := cfg.TLSConfig(); err != nil {
		return err
	} else if tc != nil {
		opts.SetTLSConfig(tc)
	}
	if u, p := cfg.BrokerCredentials(); u != "" {
		opts.SetUsername(u).SetPassword(p)
	}
	replies := make(chan []byte, 16)
	cl := mqtt.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return fmt.Errorf("command: broker %s: %v", cfg.BrokerURL(), tok.Error())
	}
	defer cl.Disconnect(100)
	if tok := cl.Subscribe(root+"cmd/"+verb+"/reply", 1, func(_ mqtt.Client, m mqtt.Message) {
		replies <- append([]byte(nil), m.Payload()...)
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("command: subscribe: %v", tok.Error())
	}
	if tok := cl.Publish(root+"cmd/"+verb, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("command: publish: %v", tok.Error())
	}
	timeout := time.After(*wait)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return fmt.Errorf("command: no reply to request %s within %v (is the gateway connected?)", c.RequestID, *wait)
		case b := <-replies:
			var r agent.Reply
			if json.Unmarshal(b, &r) != nil || r.RequestID != c.RequestID {
				continue
			}
			fmt.Fprintln(stdout, string(b))
			if r.Status != "ok" {
				return fmt.Errorf("command %s: %s: %s", verb, r.Status, r.Reason)
			}
			return nil
		}
	}
}
