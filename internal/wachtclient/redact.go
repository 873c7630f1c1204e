package wachtclient

import (
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"
)

// redactedConfig is Config without its methods, for printing.
type redactedConfig Config

const redactedText = "[REDACTED]"

func (c Config) redacted() redactedConfig {
	r := redactedConfig(c)
	if r.APIKey != "" {
		r.APIKey = redactedText
	}
	return r
}

// String returns the configuration with the API key redacted.
func (c Config) String() string { return fmt.Sprintf("%+v", c.redacted()) }

// GoString returns the configuration with the API key redacted.
func (c Config) GoString() string { return fmt.Sprintf("%#v", c.redacted()) }

// Format implements fmt.Formatter so that no verb prints the API key.
func (c Config) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), c.redacted())
}

// LogValue implements slog.LogValuer; the API key is redacted.
func (c Config) LogValue() slog.Value {
	key := ""
	if c.APIKey != "" {
		key = redactedText
	}
	return slog.GroupValue(
		slog.String("api_url", c.APIURL),
		slog.String("gateway_url", c.GatewayURL),
		slog.String("frontend_url", c.FrontendURL),
		slog.String("api_key", key),
		slog.String("user_agent", c.UserAgent),
		slog.Int("requests_per_minute", c.RequestsPerMinute),
		slog.Int("max_retries", c.MaxRetries),
	)
}

// String describes the client without its API key.
func (c *Client) String() string {
	return fmt.Sprintf("wachtclient.Client{api: %s, gateway: %s, frontend: %s, api key set: %t}",
		c.apiURL, c.gatewayURL, c.frontendURL, c.apiKey != nil)
}

// GoString describes the client without its API key.
func (c *Client) GoString() string { return c.String() }

// Format implements fmt.Formatter so that no verb prints the API key.
func (c *Client) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue implements slog.LogValuer without the API key.
func (c *Client) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("api_url", c.apiURL),
		slog.String("gateway_url", c.gatewayURL),
		slog.String("frontend_url", c.frontendURL),
		slog.Bool("api_key_set", c.apiKey != nil),
	)
}

// maxMessageRunes bounds the length of a message taken from Wacht's body.
const maxMessageRunes = 300

// sanitizeMessage makes text taken from a response safe to put in an error:
// it removes every occurrence of the given secrets, replaces control
// characters and invalid UTF-8, collapses whitespace and truncates.
func sanitizeMessage(text string, secrets []string) string {
	for _, s := range secrets {
		if s != "" {
			text = strings.ReplaceAll(text, s, redactedText)
		}
	}
	text = strings.ToValidUTF8(text, "\uFFFD")
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, text)
	text = strings.Join(strings.Fields(text), " ")
	if utf8.RuneCountInString(text) > maxMessageRunes {
		runes := []rune(text)
		text = string(runes[:maxMessageRunes]) + "…"
	}
	return text
}
