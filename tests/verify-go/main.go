// Command verify-go checks credsmith's registry hash strings with Go's own libraries:
// golang.org/x/crypto (argon2, pbkdf2, bcrypt) and crypto/sha256. It shares no code with
// the Python verifier, so a string it accepts is one another language's stock libraries
// can check from the string alone.
//
//	verify-go vectors FILE    every vector's secret verifies and wrong ones do not;
//	                          stdout: {"<name>": {"accepted": bool, "wrongRejected": bool, "error": "..."}}
//	verify-go registry FILE   FILE is a clients.json; stdin: {"<clientId>": "<secret>"};
//	                          stdout: {"<clientId>": bool} (current secret, or previous before it expires)
//	verify-go check           stdin: [{"secret": "...", "encoded": "..."}]; stdout: [bool, ...]
//
// Secrets never appear in the output or in error messages.
package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/pbkdf2"
)

// Bounds, so that a hash string cannot make one check arbitrarily costly.
const (
	maxPBKDF2Iterations = 10_000_000
	maxArgon2MemoryKiB  = 1 << 20
	maxArgon2Passes     = 64
	maxArgon2Lanes      = 16
	minSaltBytes        = 8
	minHashBytes        = 16
	maxHashBytes        = 64
)

var errMalformed = errors.New("malformed hash string")

// verify reports whether secret matches encoded; an error says why encoded is unusable.
func verify(secret, encoded string) (bool, error) {
	password := []byte(secret)
	switch {
	case strings.HasPrefix(encoded, "{SHA256}"):
		// RFC 2307 scheme syntax (OpenLDAP pw-sha2, Dovecot): padded standard base64.
		expected, err := base64.StdEncoding.Strict().DecodeString(encoded[len("{SHA256}"):])
		if err != nil || len(expected) != sha256.Size {
			return false, errMalformed
		}
		actual := sha256.Sum256(password)
		return subtle.ConstantTimeCompare(expected, actual[:]) == 1, nil
	case strings.HasPrefix(encoded, "sha256$"): // credsmith 0.1.0
		expected, err := hex.DecodeString(encoded[len("sha256$"):])
		if err != nil || len(expected) != sha256.Size {
			return false, errMalformed
		}
		actual := sha256.Sum256(password)
		return subtle.ConstantTimeCompare(expected, actual[:]) == 1, nil
	case strings.HasPrefix(encoded, "$pbkdf2-sha256$"):
		// PHC string: $pbkdf2-sha256$i=<iterations>[,l=<length>]$<salt>$<hash>
		fields := strings.Split(encoded, "$")
		if len(fields) != 5 {
			return false, errMalformed
		}
		params, err := phcParams(fields[2], "i", "l")
		if err != nil {
			return false, err
		}
		salt, expected, err := saltAndHash(fields[3], fields[4])
		if err != nil {
			return false, err
		}
		iterations, ok := params["i"]
		if !ok || iterations > maxPBKDF2Iterations {
			return false, errMalformed
		}
		if length, ok := params["l"]; ok && length != len(expected) {
			return false, errMalformed
		}
		actual := pbkdf2.Key(password, salt, iterations, len(expected), sha256.New)
		return subtle.ConstantTimeCompare(expected, actual) == 1, nil
	case strings.HasPrefix(encoded, "pbkdf2-sha256$"): // credsmith 0.1.0
		fields := strings.Split(encoded, "$")
		if len(fields) != 4 {
			return false, errMalformed
		}
		iterations, err := decimal(fields[1])
		if err != nil || iterations > maxPBKDF2Iterations {
			return false, errMalformed
		}
		salt, expected, err := saltAndHash(fields[2], fields[3])
		if err != nil {
			return false, err
		}
		actual := pbkdf2.Key(password, salt, iterations, len(expected), sha256.New)
		return subtle.ConstantTimeCompare(expected, actual) == 1, nil
	case strings.HasPrefix(encoded, "$argon2id$"):
		// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>
		fields := strings.Split(encoded, "$")
		if len(fields) != 6 || fields[2] != "v=19" {
			return false, errMalformed
		}
		params, err := phcParams(fields[3], "m", "t", "p")
		if err != nil || len(params) != 3 {
			return false, errMalformed
		}
		m, t, p := params["m"], params["t"], params["p"]
		if m > maxArgon2MemoryKiB || t > maxArgon2Passes || p > maxArgon2Lanes || m < 8*p {
			return false, errMalformed
		}
		salt, expected, err := saltAndHash(fields[4], fields[5])
		if err != nil {
			return false, err
		}
		actual := argon2.IDKey(password, salt, uint32(t), uint32(m), uint8(p), uint32(len(expected)))
		return subtle.ConstantTimeCompare(expected, actual) == 1, nil
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"),
		strings.HasPrefix(encoded, "$2y$"):
		err := bcrypt.CompareHashAndPassword([]byte(encoded), password)
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		return err == nil, err
	}
	return false, errors.New("unknown hash scheme")
}

// phcParams parses "k=v,k=v" with decimal values, allowing only the given names in order.
func phcParams(text string, names ...string) (map[string]int, error) {
	params := map[string]int{}
	next := 0
	for _, pair := range strings.Split(text, ",") {
		name, value, found := strings.Cut(pair, "=")
		for next < len(names) && names[next] != name {
			next++
		}
		if !found || next == len(names) {
			return nil, errMalformed
		}
		number, err := decimal(value)
		if err != nil {
			return nil, err
		}
		params[name] = number
		next++
	}
	return params, nil
}

func decimal(text string) (int, error) {
	if text == "" || text[0] < '1' || text[0] > '9' || len(text) > 10 {
		return 0, errMalformed
	}
	number, err := strconv.Atoi(text)
	if err != nil {
		return 0, errMalformed
	}
	return number, nil
}

// saltAndHash decodes the PHC "B64" fields: standard base64 without padding.
func saltAndHash(saltText, hashText string) ([]byte, []byte, error) {
	salt, err1 := base64.RawStdEncoding.Strict().DecodeString(saltText)
	hash, err2 := base64.RawStdEncoding.Strict().DecodeString(hashText)
	if err1 != nil || err2 != nil || len(salt) < minSaltBytes ||
		len(hash) < minHashBytes || len(hash) > maxHashBytes {
		return nil, nil, errMalformed
	}
	return salt, hash, nil
}

type vector struct {
	Name    string `json:"name"`
	Secret  string `json:"secret"`
	Encoded string `json:"encoded"`
}

type outcome struct {
	Accepted      bool   `json:"accepted"`
	WrongRejected bool   `json:"wrongRejected"`
	Error         string `json:"error,omitempty"`
}

func vectors(path string) (map[string]outcome, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var file struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		return nil, err
	}
	results := map[string]outcome{}
	for _, v := range file.Vectors {
		accepted, err := verify(v.Secret, v.Encoded)
		result := outcome{Accepted: accepted, WrongRejected: true}
		if err != nil {
			result.Error = err.Error()
		}
		for _, wrong := range []string{v.Secret + "x", v.Secret[:len(v.Secret)-1], ""} {
			if ok, _ := verify(wrong, v.Encoded); ok {
				result.WrongRejected = false
			}
		}
		results[v.Name] = result
	}
	return results, nil
}

type registryEntry struct {
	ClientID string `json:"clientId"`
	Secret   struct {
		Hash string `json:"hash"`
	} `json:"secret"`
	PreviousSecret *struct {
		Hash      string    `json:"hash"`
		ExpiresAt time.Time `json:"expiresAt"`
	} `json:"previousSecret"`
}

func registry(path string, presented map[string]string) (map[string]bool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var document struct {
		Kind    string          `json:"kind"`
		Clients []registryEntry `json:"clients"`
	}
	if err := json.Unmarshal(raw, &document); err != nil {
		return nil, err
	}
	if document.Kind != "ClientRegistry" {
		return nil, errors.New("not a ClientRegistry document")
	}
	entries := map[string]registryEntry{}
	for _, entry := range document.Clients {
		entries[entry.ClientID] = entry
	}
	results := map[string]bool{}
	for clientID, secret := range presented {
		entry, found := entries[clientID]
		ok := false
		if found {
			ok, _ = verify(secret, entry.Secret.Hash)
			if previous := entry.PreviousSecret; !ok && previous != nil &&
				time.Now().Before(previous.ExpiresAt) {
				ok, _ = verify(secret, previous.Hash)
			}
		}
		results[clientID] = ok
	}
	return results, nil
}

func check(input []byte) ([]bool, error) {
	var pairs []struct {
		Secret  string `json:"secret"`
		Encoded string `json:"encoded"`
	}
	if err := json.Unmarshal(input, &pairs); err != nil {
		return nil, err
	}
	results := make([]bool, len(pairs))
	for i, pair := range pairs {
		ok, err := verify(pair.Secret, pair.Encoded)
		if err != nil {
			fmt.Fprintf(os.Stderr, "entry %d: %v\n", i, err)
		}
		results[i] = ok
	}
	return results, nil
}

func run(args []string, stdin io.Reader) (any, error) {
	if len(args) == 2 && args[0] == "vectors" {
		return vectors(args[1])
	}
	input, err := io.ReadAll(stdin)
	if err != nil {
		return nil, err
	}
	if len(args) == 2 && args[0] == "registry" {
		var presented map[string]string
		if err := json.NewDecoder(bytes.NewReader(input)).Decode(&presented); err != nil {
			return nil, err
		}
		return registry(args[1], presented)
	}
	if len(args) == 1 && args[0] == "check" {
		return check(input)
	}
	return nil, errors.New("usage: verify-go vectors FILE | registry FILE < secrets.json | check < pairs.json")
}

func main() {
	result, err := run(os.Args[1:], os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "verify-go:", err)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(result); err != nil {
		fmt.Fprintln(os.Stderr, "verify-go:", err)
		os.Exit(2)
	}
}
