"""A gRPC client that knows nothing of tickflow but what server reflection tells it.

Usage: reflection_client.py ENDPOINT TOKEN SYMBOL
Prints one JSON object: the services found, the AddSymbol and ListSymbols answers.
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main() -> None:
    endpoint, token, symbol = sys.argv[1], sys.argv[2], sys.argv[3]
    channel = grpc.insecure_channel(endpoint)
    db = ProtoReflectionDescriptorDatabase(channel)
    services = sorted(db.get_services())
    pool = descriptor_pool.DescriptorPool(db)
    service = pool.FindServiceByName("tickflow.control.v1.SymbolService")
    metadata = [("authorization", f"Bearer {token}")]

    def call(method_name: str, fields: dict) -> dict:
        method = service.FindMethodByName(method_name)
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        rpc = channel.unary_unary(
            f"/{service.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_cls.FromString,
        )
        request = json_format.ParseDict(fields, request_cls())
        return json_format.MessageToDict(rpc(request, metadata=metadata, timeout=30))

    added = call("AddSymbol", {"symbol": symbol, "sources": ["kraken"]})
    listed = call("ListSymbols", {})
    print(json.dumps({"services": services, "added": added, "listed": listed}))


if __name__ == "__main__":
    main()
