"""Predictor: calls one endpoint (InvokeEndpoint), as sagemaker.predictor.Predictor."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from hearth.deserializers import BaseDeserializer, BytesDeserializer
from hearth.exceptions import ResourceNotFound
from hearth.serializers import BaseSerializer, IdentitySerializer
from hearth.session import Session


class Predictor:
    """Makes predictions with an existing endpoint.

    `serializer` turns predict()'s argument into the request body and sets its Content-Type;
    `deserializer` turns the answer into Python data and sets Accept. Defaults, as in the
    sagemaker SDK, send bytes as given and return bytes; endpoints deployed from a built-in
    algorithm come with CSVSerializer + JSONDeserializer instead."""

    def __init__(self, endpoint_name: str, session: Optional[Session] = None,
                 serializer: Optional[BaseSerializer] = None,
                 deserializer: Optional[BaseDeserializer] = None, *,
                 sagemaker_session: Optional[Session] = None):
        self.endpoint_name = endpoint_name
        self.session = session or sagemaker_session or Session()
        self.serializer = serializer or IdentitySerializer()
        self.deserializer = deserializer or BytesDeserializer()
        self._model_names: Optional[List[str]] = None
        self._endpoint_config_name: Optional[str] = None

    def __repr__(self) -> str:
        return f"Predictor({self.endpoint_name!r})"

    @property
    def sagemaker_session(self) -> Session:
        return self.session

    @property
    def content_type(self) -> str:
        return self.serializer.CONTENT_TYPE

    @property
    def accept(self) -> tuple:
        return self.deserializer.ACCEPT

    def predict(self, data: Any, initial_args: Optional[Dict[str, Any]] = None,
                target_model: Optional[str] = None, target_variant: Optional[str] = None,
                inference_id: Optional[str] = None,
                custom_attributes: Optional[str] = None) -> Any:
        """Serializes `data`, invokes the endpoint and deserializes the answer. A model that
        answers with an error raises hearth.ModelError (with the model's status and message);
        `initial_args` adds or overrides InvokeEndpoint arguments."""
        args: Dict[str, Any] = dict(initial_args or {})
        args.setdefault("EndpointName", self.endpoint_name)
        args.setdefault("ContentType", self.content_type)
        if self.accept and "Accept" not in args:
            args["Accept"] = ", ".join(self.accept)
        if target_model:
            args["TargetModel"] = target_model
        if target_variant:
            args["TargetVariant"] = target_variant
        if inference_id:
            args["InferenceId"] = inference_id
        if custom_attributes:
            args["CustomAttributes"] = custom_attributes
        args["Body"] = self.serializer.serialize(data)
        response = self.session.call("sagemaker-runtime", "invoke_endpoint", **args)
        return self.deserializer.deserialize(response["Body"],
                                             response.get("ContentType", ""))

    def describe(self) -> dict:
        """DescribeEndpoint."""
        return self.session.call("sagemaker", "describe_endpoint",
                                 EndpointName=self.endpoint_name)

    def _config_name(self) -> str:
        if self._endpoint_config_name is None:
            self._endpoint_config_name = self.describe()["EndpointConfigName"]
        return self._endpoint_config_name

    def _models(self) -> List[str]:
        if self._model_names is None:
            config = self.session.call("sagemaker", "describe_endpoint_config",
                                       EndpointConfigName=self._config_name())
            self._model_names = [v["ModelName"] for v in config["ProductionVariants"]]
        return self._model_names

    def delete_endpoint(self, delete_endpoint_config: bool = True) -> None:
        """DeleteEndpoint, and DeleteEndpointConfig of its config (unless told not to). The
        endpoint's models are remembered, so delete_model() still works afterwards."""
        config = self._config_name()
        if delete_endpoint_config:
            self._models()
        self.session.call("sagemaker", "delete_endpoint", EndpointName=self.endpoint_name)
        if delete_endpoint_config:
            try:
                self.session.call("sagemaker", "delete_endpoint_config",
                                  EndpointConfigName=config)
            except ResourceNotFound:
                pass

    def delete_model(self) -> None:
        """DeleteModel of every model the endpoint serves."""
        for name in self._models():
            self.session.call("sagemaker", "delete_model", ModelName=name)
