"""Model: an image plus (optionally) model artifacts, deployable to an endpoint or used for
batch transform; as sagemaker.model.Model."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from hearth import images
from hearth.deserializers import BaseDeserializer, JSONDeserializer
from hearth.exceptions import ValidationError
from hearth.predictor import Predictor
from hearth.serializers import BaseSerializer, CSVSerializer
from hearth.session import Session


def default_codecs(image: str) -> tuple:
    """(serializer, deserializer) a Predictor gets when none is given: CSV in and JSON out for
    the built-in algorithms, bytes both ways for anything else (as the sagemaker SDK)."""
    if images.builtin_algorithm(image):
        return CSVSerializer(), JSONDeserializer()
    return None, None


class Model:
    """`image_uri`: a built-in algorithm's name ("linear-learner"), an image, or a registered
    bring-your-own image; `model_data`: the S3 URI of its model.tar.gz (none for images that
    need no artifacts). The model is created (CreateModel) on first deploy/transformer use,
    under `name` (default: the image's name plus a timestamp)."""

    def __init__(self, image_uri: str, model_data: Optional[str] = None,
                 role: Optional[str] = None, *, session: Optional[Session] = None,
                 sagemaker_session: Optional[Session] = None, name: Optional[str] = None,
                 env: Optional[Dict[str, str]] = None, enable_network_isolation: bool = False,
                 vpc_config: Optional[dict] = None):
        self.image_uri = images.image_uri(image_uri)
        self.model_data = model_data
        self.session = session or sagemaker_session or Session()
        self.role = role
        self.name = name
        self.env = dict(env or {})
        self.enable_network_isolation = enable_network_isolation
        self.vpc_config = vpc_config
        self.endpoint_name: Optional[str] = None
        self._created = False

    def __repr__(self) -> str:
        return f"Model({self.image_uri!r}, name={self.name!r})"

    @property
    def sagemaker_session(self) -> Session:
        return self.session

    def container_def(self) -> dict:
        """The PrimaryContainer of CreateModel."""
        container: Dict[str, Any] = {"Image": self.image_uri}
        if self.model_data:
            container["ModelDataUrl"] = self.model_data
        if self.env:
            container["Environment"] = self.env
        return container

    def create(self, instance_type: Optional[str] = None,
               tags: Optional[List[dict]] = None) -> str:
        """CreateModel, unless done already; returns the model's name. A model of that name
        that already exists is used as it is."""
        if self._created:
            return self.name
        self.name = self.name or images.name_from_base(images.base_name_from_image(self.image_uri))
        args: Dict[str, Any] = {"ModelName": self.name, "PrimaryContainer": self.container_def(),
                                "ExecutionRoleArn": self.role or self.session.role}
        if self.enable_network_isolation:
            args["EnableNetworkIsolation"] = True
        if self.vpc_config:
            args["VpcConfig"] = self.vpc_config
        if tags:
            args["Tags"] = tags
        try:
            self.session.call("sagemaker", "create_model", **args)
        except ValidationError as e:
            if "already existing model" not in e.message:
                raise
        self._created = True
        return self.name

    def deploy(self, initial_instance_count: int = 1, instance_type: str = "ml.m5.large",
               serializer: Optional[BaseSerializer] = None,
               deserializer: Optional[BaseDeserializer] = None,
               endpoint_name: Optional[str] = None, wait: bool = True,
               variant_name: str = "AllTraffic", tags: Optional[List[dict]] = None) -> Predictor:
        """CreateModel + CreateEndpointConfig + CreateEndpoint (config and endpoint share one
        name, as the sagemaker SDK names them), then waits for InService (unless wait=False).
        Returns the Predictor; raises EndpointFailed with the reason if it does not come up."""
        self.create(instance_type, tags)
        endpoint_name = endpoint_name or images.name_from_base(
            images.base_name_from_image(self.image_uri))
        variant = {"VariantName": variant_name, "ModelName": self.name,
                   "InitialInstanceCount": initial_instance_count,
                   "InstanceType": instance_type, "InitialVariantWeight": 1.0}
        extra = {"Tags": tags} if tags else {}
        self.session.call("sagemaker", "create_endpoint_config",
                          EndpointConfigName=endpoint_name, ProductionVariants=[variant], **extra)
        self.session.call("sagemaker", "create_endpoint", EndpointName=endpoint_name,
                          EndpointConfigName=endpoint_name, **extra)
        self.endpoint_name = endpoint_name
        if wait:
            self.session.wait_for_endpoint(endpoint_name)
        default_serializer, default_deserializer = default_codecs(self.image_uri)
        predictor = Predictor(endpoint_name, self.session, serializer or default_serializer,
                              deserializer or default_deserializer)
        predictor._model_names = [self.name]
        predictor._endpoint_config_name = endpoint_name
        return predictor

    def transformer(self, instance_count: int, instance_type: str, **kwargs: Any) -> Any:
        """A Transformer running this model (created first); keyword arguments as
        Transformer's."""
        from hearth.transformer import Transformer

        self.create(instance_type)
        kwargs.setdefault("session", self.session)
        return Transformer(self.name, instance_count, instance_type, **kwargs)

    def delete_model(self) -> None:
        """DeleteModel."""
        if self.name is None:
            raise ValueError("this model was never created")
        self.session.call("sagemaker", "delete_model", ModelName=self.name)
        self._created = False
