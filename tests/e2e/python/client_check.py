"""The PyPI `kubernetes` client against skiff: create, list, watch.

Usage: client_check.py KUBECONFIG. Exits non-zero on any mismatch.
"""
import sys
import threading
import time

from kubernetes import client, config, watch


def main(kubeconfig: str) -> None:
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()
    apps = client.AppsV1Api()

    names = [ns.metadata.name for ns in core.list_namespace().items]
    assert {"default", "kube-system"} <= set(names), names

    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-a", labels={"from": "python"}), data={"k": "v"})
    core.create_namespaced_config_map("default", body)
    listed = core.list_namespaced_config_map("default", label_selector="from=python")
    assert [c.metadata.name for c in listed.items] == ["py-a"], listed.items
    rv = listed.metadata.resource_version

    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="py-web"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "py-web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "py-web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx:1.27")]),
            ),
        ),
    )
    apps.create_namespaced_deployment("default", dep)
    got = apps.read_namespaced_deployment("py-web", "default")
    assert got.spec.replicas == 2 and got.spec.strategy.type == "RollingUpdate"

    # A watch from the list's resourceVersion sees a later create and delete.
    seen = []

    def writer() -> None:
        time.sleep(0.5)
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-b", labels={"from": "python"})))
        core.delete_namespaced_config_map("py-a", "default")

    t = threading.Thread(target=writer)
    t.start()
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, "default", label_selector="from=python", resource_version=rv, timeout_seconds=10):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 2:
            w.stop()
    t.join()
    assert seen == [("ADDED", "py-b"), ("DELETED", "py-a")], seen
    print("python client: ok")


if __name__ == "__main__":
    main(sys.argv[1])
