"""doit tasks for this curriculum; everything comes from graph.toml.

    doit                    same as `doit all`
    doit test:NN_name       export and test NN after the tests of what it builds on
    doit list --all         every task
The logic lives in orchestrator/campaign/tasks.py.
"""
from pathlib import Path

from orchestrator.campaign.tasks import Campaign

CAMPAIGN = Campaign(Path(__file__).resolve().parent)
DOIT_CONFIG = CAMPAIGN.doit_config()


def task_export():
    """export a module's source into the package"""
    yield from CAMPAIGN.export_tasks()


def task_test():
    """run a module's tests after its deps' tests pass"""
    yield from CAMPAIGN.test_tasks()


def task_all():
    return CAMPAIGN.all_task()


def task_graph():
    return CAMPAIGN.graph_task()
