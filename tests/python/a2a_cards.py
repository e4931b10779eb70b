"""The official a2a-sdk (1.x) card resolver against the gateway: a registered agent's card,
fetched as A2A 0.3 and as 1.0, parses and points at the gateway. Args: BASE MASTER_KEY."""

import asyncio
import sys

import httpx
from a2a.client import A2ACardResolver


async def main(base: str, key: str) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=30) as client:
        made = await client.post(
            f"{base}/v1/agents",
            headers=auth,
            json={
                "agent_name": "sdk-remote",
                "agent_card_params": {
                    "protocolVersion": "0.3.0",
                    "name": "sdk-remote",
                    "description": "an agent behind the gateway",
                    "url": "https://agents.example.com/a2a",
                    "version": "1.0.0",
                    "capabilities": {"streaming": True},
                    "defaultInputModes": ["text"],
                    "defaultOutputModes": ["text"],
                    "skills": [{"id": "s1", "name": "skill", "description": "d", "tags": ["t"]}],
                },
            },
        )
        made.raise_for_status()
        agent_id = made.json()["agent_id"]
        gateway = f"{base}/a2a/{agent_id}"
        resolver = A2ACardResolver(client, gateway)
        for version in (None, "0.3", "1.0"):
            headers = dict(auth)
            if version:
                headers["A2A-Version"] = version
            card = await resolver.get_agent_card(http_kwargs={"headers": headers})
            assert card.name == "sdk-remote", card
            urls = [i.url for i in card.supported_interfaces]
            assert urls and all(u == gateway for u in urls), (version, urls)
            assert "agents.example.com" not in str(card), card
            assert card.skills[0].id == "s1", card
        # the older path too
        card = await resolver.get_agent_card(
            relative_card_path="/.well-known/agent.json", http_kwargs={"headers": auth}
        )
        assert card.name == "sdk-remote"
    print("ALL OK")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
