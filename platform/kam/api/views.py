"""API endpoints every tenant has: who am I, which tenant is this."""
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    is_staff = serializers.BooleanField()
    language = serializers.CharField()


class TenantInfoSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="The calling user")
    def get(self, request):
        user = request.user
        data = {
            "id": user.pk,
            "username": user.get_username(),
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "is_staff": user.is_staff,
            "language": request.LANGUAGE_CODE,
        }
        return Response(MeSerializer(data).data)


class TenantInfoView(APIView):
    @extend_schema(responses=TenantInfoSerializer, summary="The tenant of this host")
    def get(self, request):
        return Response(TenantInfoSerializer({"slug": request.tenant.slug, "name": request.tenant.name}).data)
