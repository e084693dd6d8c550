# The seed walk-through's plugin for atomic-reactor 1.6, as the walk-through writes it: the
# benchmarks load it with `--load-plugin` to time atomic-reactor posting the build's log.
from atomic_reactor.plugin import PostBuildPlugin
import requests


class LogSubmitter(PostBuildPlugin):
    key = "logs_submitter"

    def __init__(self, tasker, workflow, url):
        super(LogSubmitter, self).__init__(tasker, workflow)
        self.url = url

    def run(self):
        return requests.post(self.url, json={"logs": self.workflow.build_result.logs}).content
