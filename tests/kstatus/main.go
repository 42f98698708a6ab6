// Command kstatus prints what sigs.k8s.io/cli-utils' kstatus computes for live objects.
//
// It reads `kubectl get -o json` output on stdin (one object or a List) and prints one
// JSON line per object: {"kind", "namespace", "name", "status", "reason", "message"},
// reason being that of the library's own Reconciling or Stalled condition. The tests
// compare that status (Current, InProgress, Failed, ...) against what the operator's
// conditions are meant to say, so this program holds no logic of its own.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type line struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	var obj unstructured.Unstructured
	if err := obj.UnmarshalJSON(data); err != nil {
		return err
	}
	objects := []unstructured.Unstructured{obj}
	if obj.IsList() {
		list, err := obj.ToList()
		if err != nil {
			return err
		}
		objects = list.Items
	}
	encoder := json.NewEncoder(out)
	for i := range objects {
		result, err := status.Compute(&objects[i])
		if err != nil {
			return fmt.Errorf("%s/%s: %w", objects[i].GetKind(), objects[i].GetName(), err)
		}
		reason := ""
		if len(result.Conditions) > 0 {
			reason = result.Conditions[0].Reason
		}
		err = encoder.Encode(line{
			Kind:      objects[i].GetKind(),
			Namespace: objects[i].GetNamespace(),
			Name:      objects[i].GetName(),
			Status:    result.Status.String(),
			Reason:    reason,
			Message:   result.Message,
		})
		if err != nil {
			return err
		}
	}
	return nil
}
