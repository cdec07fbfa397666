package main

import (
	"net/url"
	"regexp"
	"strings"
)

// redacted replaces a password in what esctl prints.
const redacted = "xxxxx"

// secretKeys are the DSN parameters that carry secrets: pgx reads a password and the key file's
// passphrase from the URL's query as well as from its user part.
var secretKeys = []string{"password", "sslpassword"}

// keywordSecret matches a secret in a keyword/value DSN (password=… or password='…').
var keywordSecret = regexp.MustCompile(`(?i)\b(password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// redactDSN returns dsn with every password in it replaced, for printing.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return keywordSecret.ReplaceAllString(dsn, "${1}="+redacted)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), redacted)
	}
	q := u.Query()
	changed := false
	for k := range q {
		for _, s := range secretKeys {
			if strings.EqualFold(k, s) {
				q.Set(k, redacted)
				changed = true
			}
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// minSecret is the length from which a password found in the arguments is scrubbed from error
// messages: a shorter one would blank out ordinary words, and guards nothing.
const minSecret = 4

// secretsIn returns the passwords in DSNs among args (as given and as URL-escaped), so that they can be
// scrubbed from messages that esctl does not build itself, such as a driver's errors.
func secretsIn(args []string) []string {
	var secrets []string
	add := func(s string) {
		if len(s) >= minSecret {
			secrets = append(secrets, s)
			if e := url.QueryEscape(s); e != s {
				secrets = append(secrets, e)
			}
		}
	}
	for _, a := range args {
		if _, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "-") {
			a = v // -dsn=postgres://…
		}
		if u, err := url.Parse(a); err == nil && u.Scheme != "" {
			if p, ok := u.User.Password(); ok {
				add(p)
			}
			for k, vs := range u.Query() {
				for _, s := range secretKeys {
					if strings.EqualFold(k, s) {
						for _, v := range vs {
							add(v)
						}
					}
				}
			}
		}
		for _, m := range keywordSecret.FindAllStringSubmatch(a, -1) {
			add(strings.Trim(m[2], "'"))
		}
	}
	return secrets
}

// scrubbedError is an error whose message has the passwords of the command line replaced; it unwraps
// to the original, so that errors.Is still works.
type scrubbedError struct {
	err error
	msg string
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub returns err with the secrets replaced in its message.
func scrub(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, redacted)
	}
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{err: err, msg: msg}
}
